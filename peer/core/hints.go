// Delayed writes (hinted hand-off): a Set or Delete that cannot reach one
// of its key's copies is kept for that member and delivered when it
// answers again. The Core keeps them, bounded by Config.HintBytes, and
// decides what a delivery sends; the driver does the sending.

package core

import (
	"encoding/json"
	"slices"
	"time"
)

// HintOverhead is what one delayed write is charged beyond its key and
// value: the map slot and the hint itself, rounded up.
const HintOverhead = 96

// Hint is one delayed write of one key for one member: a Delete (or a
// Take's removal) if Del, else a Set of Value; it is dropped at Expires.
type Hint struct {
	Del     bool      `json:"del,omitempty"`
	Value   []byte    `json:"value,omitempty"`
	Expires time.Time `json:"expires"`
}

// HintEntry is a Hint with its key.
type HintEntry struct {
	Key  string `json:"key"`
	Hint Hint   `json:"hint"`
}

func hintCost(key string, h Hint) int64 { return int64(len(key)+len(h.Value)) + HintOverhead }

// SetHint is a delayed Set for a member with TTL's worth of life left.
type SetHint struct {
	Key     string        `json:"key"`
	Value   []byte        `json:"value"`
	TTL     time.Duration `json:"ttl"`
	Expires time.Time     `json:"expires"` // for HintsReturn
}

// Entry returns the hint as a HintEntry, for HintsReturn.
func (s SetHint) Entry() HintEntry {
	return HintEntry{Key: s.Key, Hint: Hint{Value: s.Value, Expires: s.Expires}}
}

// Delivery is what a delivery of delayed writes sends one member: Sets (as
// OpPutMany batches, stored only where the member has neither the key nor
// a tombstone) and Deletes (one by one), in key order. Local lists writes
// rerouted to this member's own copy (the ring changed and the key is now
// held here): apply them to the local store (a Set with store.Add). Expired
// counts hints dropped because their time passed.
type Delivery struct {
	Sets    []SetHint   `json:"sets,omitempty"`
	Deletes []HintEntry `json:"deletes,omitempty"`
	Local   []HintEntry `json:"local,omitempty"`
	Expired int         `json:"expired,omitempty"`
}

func (d Delivery) normal() Delivery {
	if len(d.Sets) == 0 {
		d.Sets = nil
	}
	if len(d.Deletes) == 0 {
		d.Deletes = nil
	}
	if len(d.Local) == 0 {
		d.Local = nil
	}
	return d
}

func (d Delivery) clone() Delivery {
	d.Sets = slices.Clone(d.Sets)
	d.Deletes = slices.Clone(d.Deletes)
	d.Local = slices.Clone(d.Local)
	return d
}

type hintStore struct {
	max        int64
	bytes      int64
	byMember   map[string]map[string]Hint // member -> key -> newest write for it
	delivering map[string]bool            // members with a delivery running
}

// HintAdd keeps a delayed write of key for member: h.Expires is now plus
// the value's TTL for a Set, now plus TombstoneTTL for a Delete (see
// SetHintAt, DeleteHintAt). A newer write of a key replaces the older one.
// It reports whether the write was kept: one that does not fit HintBytes
// is dropped (and the older write of that key with it).
func (c *Core) HintAdd(now time.Time, member string, key []byte, h Hint) (queued bool) {
	now = wallClock(now)
	h.Expires = wallClock(h.Expires)
	c.mu.Lock()
	defer c.mu.Unlock()
	queued = c.hintAdd(member, string(key), h)
	c.record(Event{Kind: KindHintAdd, At: now, Member: member, Key: key, Hint: h}, Decision{Queued: queued})
	return queued
}

// SetHintAt returns the Hint for a Set of value with ttl at now.
func (c *Core) SetHintAt(now time.Time, value []byte, ttl time.Duration) Hint {
	now = wallClock(now)
	return Hint{Value: value, Expires: now.Add(ttl)}
}

// DeleteHintAt returns the Hint for a Delete at now.
func (c *Core) DeleteHintAt(now time.Time) Hint {
	now = wallClock(now)
	return Hint{Del: true, Expires: now.Add(c.cfg.TombstoneTTL)}
}

func (c *Core) hintAdd(member, key string, h Hint) bool {
	hs := &c.hints
	cost := hintCost(key, h)
	m := hs.byMember[member]
	if m == nil {
		m = map[string]Hint{}
		hs.byMember[member] = m
	}
	old, had := m[key]
	if had {
		hs.bytes -= hintCost(key, old)
	}
	if hs.bytes+cost > hs.max {
		if had {
			delete(m, key)
		}
		return false
	}
	if h.Value != nil {
		h.Value = slices.Clone(h.Value)
	}
	m[key] = h
	hs.bytes += cost
	return true
}

// HintStats returns the number of delayed writes kept and their bytes.
func (c *Core) HintStats() (n int, bytes int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, hs := range c.hints.byMember {
		n += len(hs)
	}
	return n, c.hints.bytes
}

// HintsPending returns the members with delayed writes and no delivery
// running, sorted.
func (c *Core) HintsPending() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for m, hs := range c.hints.byMember {
		if len(hs) > 0 && !c.hints.delivering[m] {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// HintsClaim starts a delivery to member unless one is running or it has
// no delayed writes; it reports whether the caller must now run it
// (HintsTake, send, HintsReturn what failed, HintsDone).
func (c *Core) HintsClaim(now time.Time, member string) (claimed bool) {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hints.delivering[member] && len(c.hints.byMember[member]) > 0 {
		c.hints.delivering[member] = true
		claimed = true
	}
	c.record(Event{Kind: KindHintsClaim, At: now, Member: member}, Decision{Claimed: claimed})
	return claimed
}

// HintsDone ends a delivery to member started by HintsClaim.
func (c *Core) HintsDone(now time.Time, member string) {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.hints.delivering, member)
	c.record(Event{Kind: KindHintsDone, At: now, Member: member}, Decision{})
}

// HintsTake removes member's delayed writes and returns what to send it.
// The ring may have changed since they were kept: a key member no longer
// holds goes to the copies it has now instead (kept for the other members,
// in Local for this one).
func (c *Core) HintsTake(now time.Time, member string) Delivery {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	var d Delivery
	all := c.hints.byMember[member]
	delete(c.hints.byMember, member)
	keys := make([]string, 0, len(all))
	for k, h := range all {
		c.hints.bytes -= hintCost(k, h)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	r := c.ring.Load()
	for _, k := range keys {
		h := all[k]
		ttl := h.Expires.Sub(now)
		copies := r.Owners([]byte(k), c.cfg.Replicas)
		if !slices.Contains(copies, member) {
			if ttl <= 0 {
				continue
			}
			for _, cp := range copies {
				if cp == c.cfg.Self {
					d.Local = append(d.Local, HintEntry{Key: k, Hint: h})
				} else {
					c.hintAdd(cp, k, h)
				}
			}
			continue
		}
		switch {
		case ttl <= 0:
			d.Expired++
		case h.Del:
			d.Deletes = append(d.Deletes, HintEntry{Key: k, Hint: h})
		default:
			d.Sets = append(d.Sets, SetHint{Key: k, Value: h.Value, TTL: ttl, Expires: h.Expires})
		}
	}
	c.record(Event{Kind: KindHintsTake, At: now, Member: member}, Decision{Delivery: &d})
	return d
}

// HintsReturn puts back the delayed writes of a delivery that did not go
// out, unless a newer write of the key was kept meanwhile.
func (c *Core) HintsReturn(now time.Time, member string, failed []HintEntry) {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.hints.byMember[member]
	if m == nil && len(failed) > 0 {
		m = map[string]Hint{}
		c.hints.byMember[member] = m
	}
	for _, e := range failed {
		if _, newer := m[e.Key]; newer {
			continue
		}
		e.Hint.Expires = wallClock(e.Hint.Expires)
		m[e.Key] = e.Hint
		c.hints.bytes += hintCost(e.Key, e.Hint)
	}
	c.record(Event{Kind: KindHintsReturn, At: now, Member: member, Hints: failed}, Decision{})
}

// forgetHints drops the delayed writes of members not in keep; c.mu held.
func (c *Core) forgetHints(keep func(string) bool) {
	for m, hs := range c.hints.byMember {
		if keep(m) {
			continue
		}
		for k, h := range hs {
			c.hints.bytes -= hintCost(k, h)
		}
		delete(c.hints.byMember, m)
	}
}

// Keys are bytes, not text: HintEntry and SetHint encode theirs in JSON as
// base64 ([]byte), so that a trace keeps them exactly.

type hintEntryJSON struct {
	Key  []byte `json:"key"`
	Hint Hint   `json:"hint"`
}

// MarshalJSON encodes e with its key as base64.
func (e HintEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(hintEntryJSON{Key: []byte(e.Key), Hint: e.Hint})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (e *HintEntry) UnmarshalJSON(b []byte) error {
	var j hintEntryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = HintEntry{Key: string(j.Key), Hint: j.Hint}
	return nil
}

type setHintJSON struct {
	Key     []byte        `json:"key"`
	Value   []byte        `json:"value"`
	TTL     time.Duration `json:"ttl"`
	Expires time.Time     `json:"expires"`
}

// MarshalJSON encodes s with its key as base64.
func (s SetHint) MarshalJSON() ([]byte, error) {
	return json.Marshal(setHintJSON{Key: []byte(s.Key), Value: s.Value, TTL: s.TTL, Expires: s.Expires})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (s *SetHint) UnmarshalJSON(b []byte) error {
	var j setHintJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = SetHint{Key: string(j.Key), Value: j.Value, TTL: j.TTL, Expires: j.Expires}
	return nil
}
