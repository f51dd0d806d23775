// simstore_test.go: the simulator's store model against peer/store, op
// by op, on one clock: same answers, same bytes charged, same counts.

package simulations

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer/store"
	"github.com/tlsring/tlsring/ring"
)

func TestStoreModelMatchesPeerStore(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	const tombTTL = 30 * time.Second
	// Large enough that neither evicts: eviction is per shard in
	// peer/store (the one documented difference).
	real := store.New(store.Config{MaxBytes: 1 << 30, Now: clock, TombstoneTTL: tombTTL})
	model := newSimStore(1<<30, int64(tombTTL))
	r := rand.New(rand.NewPCG(1, 2))
	key := func(k uint64) []byte {
		var tok [ring.TokenLen]byte
		binary.BigEndian.PutUint64(tok[:], k)
		b := ring.TokenKey(tok, [ring.TokenDigestLen]byte{})
		return b[:]
	}
	const size = 100
	value := make([]byte, size)
	ns := func() int64 { return now.UnixNano() }
	exp := map[uint64]int64{} // key -> expiry of the entry last stored, until it is gone
	for i := range 200000 {
		k := uint64(r.IntN(2000))
		ttl := time.Duration(1+r.IntN(60)) * time.Second
		switch op := r.IntN(7); op {
		case 0:
			_, _, a := real.Get(key(k))
			if b := model.get(k, ns()); a != b {
				t.Fatalf("op %d: Get(%d) = %v, model %v", i, k, a, b)
			}
			if !a {
				delete(exp, k) // an expired entry met by a read is gone in both
			}
		case 1:
			_, _, a := real.Take(key(k))
			if b := model.take(k, ns()); a != b {
				t.Fatalf("op %d: Take(%d) = %v, model %v", i, k, a, b)
			}
			delete(exp, k)
		case 2:
			a := real.Set(key(k), value, ttl)
			if b := model.set(k, size, ns()+int64(ttl), ns()); a != b {
				t.Fatalf("op %d: Set(%d) = %v, model %v", i, k, a, b)
			}
			exp[k] = ns() + int64(ttl)
		case 3:
			a := real.Add(key(k), value, ttl)
			if b := model.add(k, size, ns()+int64(ttl), ns()); a != b {
				t.Fatalf("op %d: Add(%d) = %v, model %v", i, k, a, b)
			}
			if a {
				exp[k] = ns() + int64(ttl)
			}
		case 4:
			// A Delete of an entry that expired is the one ambiguous case:
			// peer/store leaves a tombstone if it already reclaimed the
			// entry (which one it reclaims depends on its shards, seeded
			// at random) and none if not. Skip it.
			if e := exp[k]; e != 0 && e <= ns() {
				continue
			}
			delete(exp, k)
			real.Delete(key(k))
			model.del(k, ns())
		case 5:
			if a, b := real.Deleted(key(k)), model.deleted(k, ns()); a != b {
				t.Fatalf("op %d: Deleted(%d) = %v, model %v", i, k, a, b)
			}
		case 6:
			now = now.Add(time.Duration(r.IntN(300)) * time.Millisecond)
		}
	}
	// Entries that expired but were not met yet are still charged, in both;
	// which ones depends on peer/store's shards. Live entries must agree.
	var live int
	real.Range(func(k, v []byte, ttl time.Duration) bool { live++; return true })
	var mlive int
	model.each(ns(), func(uint64, int32, int64) { mlive++ })
	if live != mlive || live == 0 {
		t.Errorf("live entries: peer/store %d, model %d", live, mlive)
	}
	// Charged bytes agree once both have dropped every expired entry.
	now = now.Add(2 * time.Minute)
	for k := range uint64(2000) {
		real.Get(key(k))
		model.get(k, ns())
		real.Deleted(key(k))
	}
	model.reclaim(ns(), 1<<30)
	st := real.Stats()
	t.Logf("after the ops: %d live entries; then peer/store %+v, model bytes %d entries %d tombstones %d", live, st, model.bytes, model.entries, model.tombs)
	if st.Entries != model.entries {
		t.Errorf("entries: peer/store %d, model %d", st.Entries, model.entries)
	}
}

func TestStoreModelCharges(t *testing.T) {
	s := newSimStore(1<<20, int64(time.Minute))
	s.set(1, 100, 10, 0)
	if want := int64(ring.TokenKeyLen + 100 + store.EntryOverhead); s.bytes != want {
		t.Errorf("one entry charged %d, want key+value+EntryOverhead = %d", s.bytes, want)
	}
	// Eviction at MaxBytes: least recently used first.
	s = newSimStore(16*10*entryCost(100), int64(time.Minute))
	s.max = 10 * entryCost(100) // one shard's worth: the model evicts across the whole
	for k := range uint64(10) {
		s.set(k, 100, 1e12, 0)
	}
	s.get(0, 1)
	s.set(10, 100, 1e12, 2)
	if !s.get(0, 3) || s.get(1, 3) || s.evicted != 1 {
		t.Errorf("evicted %d; key 0 (recently read) present %v, key 1 (oldest) present %v", s.evicted, s.get(0, 3), s.get(1, 3))
	}
}
