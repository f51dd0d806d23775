package peer

import (
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer/store"
)

func TestConfigDefaultsAndNegativeFields(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBytes != store.DefaultMaxBytes || c.HintBytes != store.DefaultMaxBytes/8 || c.Replicas != DefaultReplicas ||
		c.HedgeAfter != DefaultHedgeAfter || c.TransferTimeout != DefaultTransferTimeout || c.Logger == nil || c.Now == nil {
		t.Errorf("defaults: %+v", c)
	}
	if c, _ := (Config{MaxBytes: 800}).withDefaults(); c.HintBytes != 100 {
		t.Errorf("HintBytes of MaxBytes 800 = %d, want 100", c.HintBytes)
	}
	for cfg, want := range map[*Config]string{
		{HedgeAfter: -time.Millisecond}: "peer: Config.HedgeAfter -1ms is negative; use 0 for the default",
		{TombstoneTTL: -time.Second}:    "peer: Config.TombstoneTTL -1s is negative; use 0 for the default",
		{Replicas: -1}:                  "peer: Config.Replicas -1 is negative; use 0 for the default",
	} {
		if _, err := cfg.withDefaults(); err == nil || err.Error() != want {
			t.Errorf("%+v: %v, want %q", *cfg, err, want)
		}
	}
}
