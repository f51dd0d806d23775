// The Core type, its configuration and construction.

package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsring/tlsring/ring"
)

// Defaults for Config's zero values (package peer documents them for its
// users).
const (
	DefaultReplicas      = 2
	DefaultHedgeAfter    = time.Millisecond
	DefaultProbeInterval = 200 * time.Millisecond
	DefaultDownAfter     = 3
	DefaultTombstoneTTL  = 10 * time.Minute
	DefaultHintBytes     = 8 << 20
	// DefaultTransferPatience: see Config.TransferPatience.
	DefaultTransferPatience = 10 * time.Second
)

// TransferParts is how many parts each member's share of a state transfer
// is cut into, by a hash of the key (PartOf): each part is asked for,
// bounded, and retried on its own.
const TransferParts = 16

// Transfer backoff: the first retry round waits about TransferBackoffMin,
// each further one twice as long, up to TransferBackoffMax; each wait is
// jittered (between half and all of it).
const (
	TransferBackoffMin = 50 * time.Millisecond
	TransferBackoffMax = time.Second
)

// Rebalance backoff: as for the transfer, from RebalanceBackoffMin up to
// RebalanceBackoffMax.
const (
	RebalanceBackoffMin = 100 * time.Millisecond
	RebalanceBackoffMax = 5 * time.Second
)

// Config configures a Core. Self and Members are required; zero values of
// the others take the documented defaults.
type Config struct {
	// Self is this member's name, as it appears in Members.
	Self string `json:"self"`
	// Members is the initial member list, Self included.
	Members []string `json:"members"`
	// Replicas is how many members hold each key, owner included.
	Replicas int `json:"replicas"`
	// HedgeAfter is how long a read waits for one copy before also asking
	// the next.
	HedgeAfter time.Duration `json:"hedge_after"`
	// ProbeInterval is how often members marked down are probed.
	ProbeInterval time.Duration `json:"probe_interval"`
	// DownAfter is how many calls to a member must time out in a row
	// before it is marked down; a refused or unreachable call marks it
	// down at once.
	DownAfter int `json:"down_after"`
	// TombstoneTTL is the lifetime of a delayed Delete.
	TombstoneTTL time.Duration `json:"tombstone_ttl"`
	// HintBytes bounds the delayed writes kept (keys, values and
	// HintOverhead each).
	HintBytes int64 `json:"hint_bytes"`
	// TransferPatience is how long a state transfer keeps waiting for a
	// member marked down before the member counts as ready without that
	// member's share. Within it, a member marked down still holds
	// readiness: a member that restarts on a busy machine may mark live
	// but slow members down during its warm-up, and reporting ready
	// without their shares would let a rolling restart stop the next
	// member before its entries are here. After it, a member marked down
	// no longer holds readiness (it may never come back); its share is
	// still pulled when it answers again.
	TransferPatience time.Duration `json:"transfer_patience,omitempty"`
	// ExternalLiveness makes Liveness events (an external membership
	// source, such as gossip) the only judge of which members are down:
	// call outcomes no longer mark members down or up, and Tick probes
	// nobody.
	ExternalLiveness bool `json:"external_liveness,omitempty"`
	// Seed seeds the Core's only random source (the jitter of transfer and
	// rebalance retries). The same seed and events give the same
	// decisions.
	Seed uint64 `json:"seed"`
	// Recorder, if set, receives every event the Core applies and the
	// decision it returned, in order.
	Recorder Recorder `json:"-"`
	// Ring, if set, is the initial ring, used instead of building one from
	// Members (which New then sets from it): a simulator builds one ring
	// for all its cores (rings are immutable; building one of 1000 members
	// costs milliseconds).
	Ring *ring.Ring `json:"-"`
}

func (cfg *Config) withDefaults() error {
	switch {
	case cfg.Self == "":
		return errors.New("core: Config.Self is empty")
	case cfg.Replicas < 0 || cfg.DownAfter < 0 || cfg.HintBytes < 0:
		return errors.New("core: Config.Replicas, DownAfter and HintBytes must not be negative")
	case cfg.HedgeAfter < 0 || cfg.ProbeInterval < 0 || cfg.TombstoneTTL < 0 || cfg.TransferPatience < 0:
		return errors.New("core: Config durations must not be negative")
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = DefaultReplicas
	}
	if cfg.Replicas > 64 {
		return fmt.Errorf("core: Config.Replicas %d exceeds 64", cfg.Replicas)
	}
	if cfg.HedgeAfter == 0 {
		cfg.HedgeAfter = DefaultHedgeAfter
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.DownAfter == 0 {
		cfg.DownAfter = DefaultDownAfter
	}
	if cfg.TombstoneTTL == 0 {
		cfg.TombstoneTTL = DefaultTombstoneTTL
	}
	if cfg.HintBytes == 0 {
		cfg.HintBytes = DefaultHintBytes
	}
	if cfg.TransferPatience == 0 {
		cfg.TransferPatience = DefaultTransferPatience
	}
	return nil
}

// Core is the decision state of one member. Its methods are safe for
// concurrent use; each applies one event atomically.
type Core struct {
	cfg  Config
	ring atomic.Pointer[ring.Ring]

	mu  sync.RWMutex
	rnd *rand.Rand

	// health
	down      map[string]DownInfo // member -> when and why it was marked down
	timeouts  map[string]int      // member -> timed-out calls since its last answer
	nextProbe time.Time

	hints hintStore
	tr    transfer
}

// New builds a Core for cfg at time now. It starts the state transfer of
// the initial ring (generation 1): a member pulls its entries when it
// starts.
func New(cfg Config, now time.Time) (*Core, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	r := cfg.Ring
	if r == nil {
		var err error
		if r, err = ring.New(cfg.Members); err != nil {
			return nil, fmt.Errorf("core: bad Config.Members: %w", err)
		}
		cfg.Members = slices.Clone(cfg.Members)
	} else {
		cfg.Members = r.Members() // immutable, shared
		cfg.Ring = nil
	}
	if !r.Contains(cfg.Self) {
		return nil, fmt.Errorf("core: Config.Self %q is not in Config.Members", cfg.Self)
	}
	c := &Core{
		cfg:       cfg,
		rnd:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		down:      map[string]DownInfo{},
		timeouts:  map[string]int{},
		nextProbe: now.Add(cfg.ProbeInterval),
		hints:     hintStore{max: cfg.HintBytes, byMember: map[string]map[string]Hint{}, delivering: map[string]bool{}},
	}
	c.ring.Store(r)
	c.startTransfer(now, r)
	if sr, ok := cfg.Recorder.(StartRecorder); ok {
		sr.Start(cfg, now)
	}
	return c, nil
}

// Config returns the Core's configuration, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// Ring returns the current ring. It does not lock.
func (c *Core) Ring() *ring.Ring { return c.ring.Load() }

// Self returns this member's name.
func (c *Core) Self() string { return c.cfg.Self }

// wallClock drops t's monotonic clock reading and location: a Core
// computes with wall times in UTC only, so that a recorded trace (whose
// times carry neither) replays to the same decisions.
func wallClock(t time.Time) time.Time { return t.Round(0).UTC() }

func (c *Core) record(ev Event, d Decision) {
	if c.cfg.Recorder != nil {
		c.cfg.Recorder.Record(Step{Event: ev.clone(), Decision: d.clone()})
	}
}
