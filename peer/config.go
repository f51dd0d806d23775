// config.go: Config's checks and defaults, in one place: New calls
// withDefaults first, and every zero field takes the default its doc names.

package peer

import (
	"cmp"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/tlsring/tlsring/peer/store"
)

// withDefaults checks cfg's numeric fields, naming the first that is
// wrong, and returns cfg with every zero field set to its default. Self,
// Members and TLS are checked by New, which needs the ring they make.
func (cfg Config) withDefaults() (Config, error) {
	for _, f := range []struct {
		name string
		v    any // an integer or a time.Duration
		neg  bool
	}{
		{"MaxBytes", cfg.MaxBytes, cfg.MaxBytes < 0}, {"Replicas", cfg.Replicas, cfg.Replicas < 0},
		{"DownAfter", cfg.DownAfter, cfg.DownAfter < 0}, {"HintBytes", cfg.HintBytes, cfg.HintBytes < 0},
		{"HedgeAfter", cfg.HedgeAfter, cfg.HedgeAfter < 0}, {"RequestTimeout", cfg.RequestTimeout, cfg.RequestTimeout < 0},
		{"ProbeInterval", cfg.ProbeInterval, cfg.ProbeInterval < 0}, {"TombstoneTTL", cfg.TombstoneTTL, cfg.TombstoneTTL < 0},
		{"TransferTimeout", cfg.TransferTimeout, cfg.TransferTimeout < 0},
	} {
		if f.neg {
			return cfg, fmt.Errorf("peer: Config.%s %v is negative; use 0 for the default", f.name, f.v)
		}
	}
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, store.DefaultMaxBytes)
	cfg.Replicas = cmp.Or(cfg.Replicas, DefaultReplicas)
	cfg.DownAfter = cmp.Or(cfg.DownAfter, DefaultDownAfter)
	cfg.HedgeAfter = cmp.Or(cfg.HedgeAfter, DefaultHedgeAfter)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout)
	cfg.ProbeInterval = cmp.Or(cfg.ProbeInterval, DefaultProbeInterval)
	cfg.HintBytes = cmp.Or(cfg.HintBytes, cfg.MaxBytes/8)
	cfg.TombstoneTTL = cmp.Or(cfg.TombstoneTTL, store.DefaultTombstoneTTL)
	cfg.TransferTimeout = cmp.Or(cfg.TransferTimeout, DefaultTransferTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64() | 1
	}
	return cfg, nil
}
