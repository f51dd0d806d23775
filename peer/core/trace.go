// Events, decisions, and the trace that records them for replay.

package core

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tlsring/tlsring/ring"
)

// Kind names an event a Core applies.
type Kind uint8

// The events. Each is applied by the Core method of the same name; Step
// applies any of them.
const (
	KindRoute            Kind = iota + 1 // Route: Route, Key -> Order, Up
	KindCallOK                           // CallOK: Member -> Changed (it was down and is up again)
	KindCallFailed                       // CallFailed: Member, TimedOut, Err -> Changed (marked down now)
	KindLiveness                         // Liveness, LivenessDown: Member, Alive, Err (the reason) -> Changed
	KindTick                             // Tick -> Probe, Deliver
	KindMiss                             // Miss: Key, Tombstoned -> Miss
	KindSetMembers                       // SetMembers: Members -> Err, StartTransfer, Gen
	KindHintAdd                          // HintAdd: Member, Hint -> Queued
	KindHintsClaim                       // HintsClaim: Member -> Claimed
	KindHintsTake                        // HintsTake: Member -> Delivery
	KindHintsReturn                      // HintsReturn: Member, Hints -> (nothing)
	KindHintsDone                        // HintsDone: Member -> (nothing)
	KindTransferRound                    // TransferRound: Gen -> Parts
	KindTransferPartDone                 // TransferPartDone: Gen, Part, Err -> Transferring
	KindTransferRoundEnd                 // TransferRoundEnd: Gen -> Done, Wait
	KindRebalanceBackoff                 // RebalanceBackoff: Backoff -> Wait, Next
)

var kindNames = [...]string{"", "Route", "CallOK", "CallFailed", "Liveness", "Tick", "Miss", "SetMembers",
	"HintAdd", "HintsClaim", "HintsTake", "HintsReturn", "HintsDone",
	"TransferRound", "TransferPartDone", "TransferRoundEnd", "RebalanceBackoff"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Event is one input to a Core: its Kind, the time it happened (At) and
// the fields that kind uses (see each Kind); the others are zero.
type Event struct {
	Kind       Kind          `json:"kind"`
	At         time.Time     `json:"at"`
	Member     string        `json:"member,omitempty"`
	Key        []byte        `json:"key,omitempty"`
	Route      RouteKind     `json:"route,omitempty"`
	Members    []string      `json:"members,omitempty"`
	TimedOut   bool          `json:"timed_out,omitempty"`
	Err        string        `json:"err,omitempty"`
	Alive      bool          `json:"alive,omitempty"`
	Tombstoned bool          `json:"tombstoned,omitempty"`
	Hint       Hint          `json:"hint,omitzero"`
	Hints      []HintEntry   `json:"hints,omitempty"`
	Gen        uint64        `json:"gen,omitempty"`
	Part       Part          `json:"part,omitzero"`
	Backoff    time.Duration `json:"backoff,omitempty"`
}

// Decision is what a Core decided for one event; the fields an event's
// Kind does not set are zero.
type Decision struct {
	// Order lists the copies of a key in the order to ask them, Up of
	// them not marked down (Route).
	Order []string `json:"order,omitempty"`
	Up    int      `json:"up,omitempty"`
	// Changed reports a health transition: a member marked down
	// (CallFailed, Liveness) or up again (CallOK, Liveness). When a member
	// comes up, deliver its delayed writes and wake the state transfer.
	Changed bool `json:"changed,omitempty"`
	// Miss is the answer to a read or take of a key the store misses.
	Miss MissAnswer `json:"miss,omitempty"`
	// Probe lists members to ping now; Deliver, members to start a
	// delivery of delayed writes to (Tick).
	Probe   []string `json:"probe,omitempty"`
	Deliver []string `json:"deliver,omitempty"`
	// Queued reports a delayed write kept (HintAdd); Claimed, a delivery
	// the caller must now run (HintsClaim).
	Queued  bool `json:"queued,omitempty"`
	Claimed bool `json:"claimed,omitempty"`
	// Delivery is what to send a member (HintsTake).
	Delivery *Delivery `json:"delivery,omitempty"`
	// Err says why a membership change was ignored (SetMembers).
	Err string `json:"err,omitempty"`
	// StartTransfer says to run a new state transfer, generation Gen
	// (SetMembers).
	StartTransfer bool   `json:"start_transfer,omitempty"`
	Gen           uint64 `json:"gen,omitempty"`
	// Parts lists the transfer parts to ask for this round
	// (TransferRound).
	Parts []Part `json:"parts,omitempty"`
	// Transferring says whether a miss still waits for the state
	// transfer (TransferPartDone, TransferRoundEnd).
	Transferring bool `json:"transferring,omitempty"`
	// Done says the state transfer is complete; otherwise Wait is how long
	// to wait before the next round, or before the next rebalance attempt,
	// whose backoff is Next (TransferRoundEnd, RebalanceBackoff).
	Done bool          `json:"done,omitempty"`
	Wait time.Duration `json:"wait,omitempty"`
	Next time.Duration `json:"next,omitempty"`
}

// Step is one applied event and the decision returned for it.
type Step struct {
	Event    Event    `json:"event"`
	Decision Decision `json:"decision"`
}

// Recorder receives the steps of a Core, in the order they were applied.
// Record is called with the Core's lock held: it must be quick and must not
// call the Core.
type Recorder interface {
	Record(Step)
}

// StartRecorder is a Recorder that wants to know the Core it records: New
// calls Start with the Core's Config (defaults filled in, Recorder aside)
// and the time it was built at, before any Record.
type StartRecorder interface {
	Recorder
	Start(cfg Config, now time.Time)
}

// Trace is a recorded run of one Core: its Config (Recorder aside), the
// time it was built at, and every step. It encodes to JSON as is.
type Trace struct {
	Config Config    `json:"config"`
	Start  time.Time `json:"start"`
	Steps  []Step    `json:"steps"`
}

// TraceRecorder is a Recorder that keeps the steps in memory as a Trace.
type TraceRecorder struct {
	mu sync.Mutex
	t  Trace
}

// NewTraceRecorder returns a recorder for a Core built with cfg at start.
// Pass it as cfg.Recorder. New sets the trace's Config and Start itself
// (Start), so zero values do: NewTraceRecorder(Config{}, time.Time{}).
func NewTraceRecorder(cfg Config, start time.Time) *TraceRecorder {
	r := &TraceRecorder{}
	r.Start(cfg, start)
	return r
}

// Start sets the trace's Config and start time, keeping the steps so far.
func (r *TraceRecorder) Start(cfg Config, start time.Time) {
	cfg.Recorder = nil
	cfg.Members = slices.Clone(cfg.Members)
	r.mu.Lock()
	r.t.Config, r.t.Start = cfg, start
	r.mu.Unlock()
}

// Record appends s.
func (r *TraceRecorder) Record(s Step) {
	r.mu.Lock()
	r.t.Steps = append(r.t.Steps, s)
	r.mu.Unlock()
}

// Trace returns a copy of the trace so far.
func (r *TraceRecorder) Trace() Trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.t
	t.Steps = slices.Clone(t.Steps)
	return t
}

// Replay builds a fresh Core from t's Config and Start, applies every step's
// event with Step, and returns an error describing the first decision that
// differs from the recorded one (nil if none does).
func Replay(t Trace) error {
	cfg := t.Config
	cfg.Recorder = nil
	c, err := New(cfg, t.Start)
	if err != nil {
		return fmt.Errorf("core: replay: %w", err)
	}
	rings := map[string]*ring.Ring{} // built once per member list
	for i, s := range t.Steps {
		var got Decision
		if s.Event.Kind == KindSetMembers {
			key := strings.Join(s.Event.Members, "\x00")
			r, ok := rings[key]
			if !ok {
				r, _ = ring.New(s.Event.Members)
				rings[key] = r
			}
			if r != nil {
				got = c.SetRing(s.Event.At, r)
			} else {
				got = c.Step(s.Event)
			}
		} else {
			got = c.Step(s.Event)
		}
		if !got.Equal(s.Decision) {
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(s.Decision)
			return fmt.Errorf("core: replay: step %d (%s at %s): decided %s, recorded %s",
				i, s.Event.Kind, s.Event.At.Format(time.RFC3339Nano), gotJSON, wantJSON)
		}
	}
	return nil
}

// Step applies ev with the Core method its Kind names and returns the
// decision. It is how a trace is replayed; drivers may call it or the
// methods.
func (c *Core) Step(ev Event) Decision {
	switch ev.Kind {
	case KindRoute:
		order, up := c.Route(ev.Route, ev.Key)
		return Decision{Order: order, Up: up}
	case KindCallOK:
		return Decision{Changed: c.CallOK(ev.At, ev.Member)}
	case KindCallFailed:
		return Decision{Changed: c.CallFailed(ev.At, ev.Member, ev.TimedOut, ev.Err)}
	case KindLiveness:
		return Decision{Changed: c.liveness(ev.At, ev.Member, ev.Alive, ev.Err)}
	case KindTick:
		return c.Tick(ev.At)
	case KindMiss:
		return Decision{Miss: c.Miss(ev.At, ev.Key, ev.Tombstoned)}
	case KindSetMembers:
		return c.SetMembers(ev.At, ev.Members)
	case KindHintAdd:
		return Decision{Queued: c.HintAdd(ev.At, ev.Member, ev.Key, ev.Hint)}
	case KindHintsClaim:
		return Decision{Claimed: c.HintsClaim(ev.At, ev.Member)}
	case KindHintsTake:
		d := c.HintsTake(ev.At, ev.Member)
		return Decision{Delivery: &d}
	case KindHintsReturn:
		c.HintsReturn(ev.At, ev.Member, ev.Hints)
		return Decision{}
	case KindHintsDone:
		c.HintsDone(ev.At, ev.Member)
		return Decision{}
	case KindTransferRound:
		return Decision{Parts: c.TransferRound(ev.At, ev.Gen)}
	case KindTransferPartDone:
		return Decision{Transferring: c.TransferPartDone(ev.At, ev.Gen, ev.Part, ev.Err)}
	case KindTransferRoundEnd:
		return c.TransferRoundEnd(ev.At, ev.Gen)
	case KindRebalanceBackoff:
		wait, next := c.RebalanceBackoff(ev.At, ev.Backoff)
		return Decision{Wait: wait, Next: next}
	}
	return Decision{Err: fmt.Sprintf("unknown event kind %d", ev.Kind)}
}

// Equal reports whether d and o decide the same (nil and empty lists
// alike).
func (d Decision) Equal(o Decision) bool {
	return reflect.DeepEqual(d.normal(), o.normal())
}

func (d Decision) normal() Decision {
	if len(d.Order) == 0 {
		d.Order = nil
	}
	if len(d.Probe) == 0 {
		d.Probe = nil
	}
	if len(d.Deliver) == 0 {
		d.Deliver = nil
	}
	if len(d.Parts) == 0 {
		d.Parts = nil
	}
	if d.Delivery != nil {
		n := d.Delivery.normal()
		d.Delivery = &n
	}
	return d
}

func (ev Event) clone() Event {
	ev.Key = slices.Clone(ev.Key)
	ev.Members = slices.Clone(ev.Members)
	ev.Hint.Value = slices.Clone(ev.Hint.Value)
	if ev.Hints != nil {
		hs := make([]HintEntry, len(ev.Hints))
		for i, h := range ev.Hints {
			hs[i] = HintEntry{Key: h.Key, Hint: Hint{Del: h.Hint.Del, Value: slices.Clone(h.Hint.Value), Expires: h.Hint.Expires}}
		}
		ev.Hints = hs
	}
	return ev
}

func (d Decision) clone() Decision {
	d.Order = slices.Clone(d.Order)
	d.Probe = slices.Clone(d.Probe)
	d.Deliver = slices.Clone(d.Deliver)
	d.Parts = slices.Clone(d.Parts)
	if d.Delivery != nil {
		dl := d.Delivery.clone()
		d.Delivery = &dl
	}
	return d
}
