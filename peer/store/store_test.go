package store

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a manual clock for TTL tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func newClocked(maxBytes int64) (*Store, *clock) {
	c := &clock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return New(Config{MaxBytes: maxBytes, Now: c.now}), c
}

func k(i int) []byte { return []byte(fmt.Sprintf("key-%08d", i)) }

func TestSetGetTakeDelete(t *testing.T) {
	s, _ := newClocked(1 << 20)
	if _, _, ok := s.Get([]byte("a")); ok {
		t.Fatal("Get on empty store found something")
	}
	v := []byte("value")
	if !s.Set([]byte("a"), v, time.Minute) {
		t.Fatal("Set failed")
	}
	v[0] = 'X' // the store must have copied
	got, ttl, ok := s.Get([]byte("a"))
	if !ok || string(got) != "value" || ttl != time.Minute {
		t.Fatalf("Get = %q, %v, %v; want value, 1m, true", got, ttl, ok)
	}
	if !s.Set([]byte("a"), []byte("second"), time.Minute) {
		t.Fatal("overwrite failed")
	}
	if st := s.Stats(); st.Entries != 1 || st.Bytes != int64(1+6+EntryOverhead) {
		t.Fatalf("after overwrite Stats = %+v", st)
	}
	got, _, ok = s.Take([]byte("a"))
	if !ok || string(got) != "second" {
		t.Fatalf("Take = %q, %v", got, ok)
	}
	if _, _, ok := s.Take([]byte("a")); ok {
		t.Fatal("second Take found the key")
	}
	s.Set([]byte("b"), []byte("x"), time.Minute)
	if !s.Delete([]byte("b")) || s.Delete([]byte("b")) {
		t.Fatal("Delete should report true once, then false")
	}
	// Take and Delete leave tombstones, charged key+overhead each.
	if st := s.Stats(); st.Entries != 0 || st.Tombstones != 2 || st.Bytes != int64(2*(1+EntryOverhead)) {
		t.Fatalf("store with two tombstones: Stats = %+v", st)
	}
}

func TestTombstones(t *testing.T) {
	s, c := newClocked(1 << 20)
	// A taken key refuses a late copy (Add) for the rest of its lifetime...
	s.Set([]byte("a"), []byte("v"), time.Minute)
	if _, _, ok := s.Take([]byte("a")); !ok {
		t.Fatal("Take missed")
	}
	if s.Add([]byte("a"), []byte("late"), time.Minute) {
		t.Fatal("Add brought back a taken key")
	}
	if _, _, ok := s.Get([]byte("a")); ok {
		t.Fatal("Get found a tombstone")
	}
	// ...and a deleted key that was never here, for TombstoneTTL.
	s.Delete([]byte("never"))
	if s.Add([]byte("never"), []byte("late"), time.Hour) {
		t.Fatal("Add brought back a key deleted before it arrived")
	}
	// Range skips tombstones.
	s.Range(func(key, _ []byte, _ time.Duration) bool {
		t.Fatalf("Range passed %q, a tombstone", key)
		return true
	})
	// An explicit Set wins over a tombstone.
	if !s.Set([]byte("a"), []byte("new"), time.Minute) {
		t.Fatal("Set refused")
	}
	if v, _, ok := s.Get([]byte("a")); !ok || string(v) != "new" {
		t.Fatalf("Get after Set over a tombstone = %q, %v", v, ok)
	}
	// Add does not overwrite a live entry.
	if s.Add([]byte("a"), []byte("other"), time.Minute) {
		t.Fatal("Add overwrote a live entry")
	}
	// Tombstones expire: with the entry's lifetime, capped at TombstoneTTL.
	c.advance(DefaultTombstoneTTL + time.Second)
	if !s.Add([]byte("never"), []byte("v"), time.Minute) {
		t.Fatal("a tombstone outlived TombstoneTTL")
	}
	// Drop removes an entry without a tombstone.
	s.Set([]byte("d"), []byte("v"), time.Minute)
	s.Drop([]byte("d"))
	if !s.Add([]byte("d"), []byte("v"), time.Minute) {
		t.Fatal("Drop left a tombstone")
	}
}

func TestRejects(t *testing.T) {
	s, _ := newClocked(16 * 4096)
	if s.Set([]byte("a"), []byte("v"), 0) || s.Set([]byte("a"), []byte("v"), -time.Second) {
		t.Error("Set accepted a non-positive ttl")
	}
	if s.Set([]byte("a"), make([]byte, s.MaxEntrySize()), time.Minute) {
		t.Error("Set accepted an entry larger than a shard")
	}
	if !s.Set([]byte("a"), make([]byte, s.MaxEntrySize()-1), time.Minute) {
		t.Error("Set refused the largest entry that fits")
	}
}

func TestExpiry(t *testing.T) {
	s, c := newClocked(1 << 20)
	s.Set([]byte("short"), []byte("1"), time.Second)
	s.Set([]byte("long"), []byte("2"), time.Hour)
	c.advance(999 * time.Millisecond)
	if _, ttl, ok := s.Get([]byte("short")); !ok || ttl != time.Millisecond {
		t.Fatalf("before expiry: ok=%v ttl=%v", ok, ttl)
	}
	c.advance(time.Millisecond)
	if _, _, ok := s.Get([]byte("short")); ok {
		t.Fatal("Get returned an entry at its expiry time")
	}
	if _, _, ok := s.Take([]byte("short")); ok {
		t.Fatal("Take returned an expired entry")
	}
	if _, _, ok := s.Get([]byte("long")); !ok {
		t.Fatal("long-lived entry gone")
	}
	s.Set([]byte("gone"), []byte("3"), time.Second)
	c.advance(2 * time.Second)
	n := 0
	s.Range(func(key, _ []byte, _ time.Duration) bool {
		n++
		if string(key) != "long" {
			t.Errorf("Range yielded expired key %q", key)
		}
		return true
	})
	if n != 1 {
		t.Fatalf("Range yielded %d entries, want 1", n)
	}
	if st := s.Stats(); st.Expirations < 1 {
		t.Fatalf("Expirations = %d", st.Expirations)
	}
}

// TestSetReclaimsExpired checks that writes reclaim expired entries without
// any reads, so expired sessions do not hold memory until evicted.
func TestSetReclaimsExpired(t *testing.T) {
	s, c := newClocked(1 << 20)
	for i := 0; i < 1000; i++ {
		s.Set(k(i), []byte("v"), time.Second)
	}
	c.advance(time.Hour)
	for i := 1000; i < 2000; i++ {
		s.Set(k(i), []byte("v"), time.Hour)
	}
	st := s.Stats()
	if st.Entries != 1000 || st.Expirations != 1000 || st.Evictions != 0 {
		t.Fatalf("Stats = %+v, want 1000 live entries, 1000 expirations, no evictions", st)
	}
}

func TestLRUEviction(t *testing.T) {
	const value = 100
	per := int64(len(k(0)) + value + EntryOverhead)
	s, _ := newClocked(shardCount * per * 64) // room for about 64 entries a shard
	for i := 0; i < 64*shardCount*4; i++ {
		s.Set(k(i), make([]byte, value), time.Hour)
		s.Get(k(0)) // keep key 0 hot
	}
	if _, _, ok := s.Get(k(0)); !ok {
		t.Error("the most recently used entry was evicted")
	}
	if _, _, ok := s.Get(k(1)); ok {
		t.Error("a cold early entry survived 4x overfill")
	}
	st := s.Stats()
	if st.Bytes > shardCount*per*64 || st.Evictions == 0 {
		t.Fatalf("Stats = %+v, bound %d", st, shardCount*per*64)
	}
}

// TestMaxBytesUnderConcurrentFlood writes far more than fits from several
// goroutines with varied sizes and checks the bound at every step.
func TestMaxBytesUnderConcurrentFlood(t *testing.T) {
	const maxBytes = 256 << 10
	s, _ := newClocked(maxBytes)
	var wg sync.WaitGroup
	var over atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				s.Set(k(g*100000+i), make([]byte, (i*37)%2000), time.Hour)
				if b := s.Stats().Bytes; b > maxBytes {
					over.Store(b)
				}
			}
		}()
	}
	wg.Wait()
	if b := over.Load(); b != 0 {
		t.Fatalf("store held %d bytes, MaxBytes %d", b, maxBytes)
	}
	st := s.Stats()
	if st.Entries <= 0 || st.Evictions == 0 {
		t.Fatalf("Stats = %+v", st)
	}
	// Count what is really there and compare to the gauges.
	var n, b int64
	s.Range(func(key, value []byte, _ time.Duration) bool {
		n++
		b += int64(len(key)+len(value)) + EntryOverhead
		return true
	})
	if n != st.Entries || b != st.Bytes {
		t.Fatalf("Range found %d entries / %d bytes, Stats says %d / %d", n, b, st.Entries, st.Bytes)
	}
}

func TestTakeSingleWinner(t *testing.T) {
	s, _ := newClocked(1 << 20)
	for round := 0; round < 200; round++ {
		key := k(round)
		s.Set(key, []byte("session"), time.Hour)
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, _, ok := s.Take(key); ok {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d Takes won, want exactly 1", round, wins.Load())
		}
	}
}

func TestRangeMayMutate(t *testing.T) {
	s, _ := newClocked(1 << 20)
	for i := 0; i < 100; i++ {
		s.Set(k(i), []byte{byte(i)}, time.Hour)
	}
	seen := 0
	s.Range(func(key, value []byte, _ time.Duration) bool {
		seen++
		if !bytes.Equal(value, []byte{value[0]}) {
			t.Fatal("bad value")
		}
		s.Delete(key) // must not deadlock
		return true
	})
	if seen != 100 || s.Stats().Entries != 0 {
		t.Fatalf("seen %d, left %d", seen, s.Stats().Entries)
	}
}

func BenchmarkGet(b *testing.B) {
	s := New(Config{})
	for i := 0; i < 10000; i++ {
		s.Set(k(i), make([]byte, 100), time.Hour)
	}
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = k(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Get(keys[i%10000])
			i++
		}
	})
}

func BenchmarkSet(b *testing.B) {
	s := New(Config{})
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = k(i)
	}
	v := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Set(keys[i&(1<<16-1)], v, time.Hour)
			i++
		}
	})
}

func BenchmarkTake(b *testing.B) {
	s := New(Config{})
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = k(i)
	}
	v := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := keys[i&(1<<16-1)]
		if i&(1<<16-1) == 0 {
			b.StopTimer()
			for _, key := range keys {
				s.Set(key, v, time.Hour)
			}
			b.StartTimer()
		}
		s.Take(key)
	}
}

// BenchmarkMemory1M measures heap bytes per entry for 1M entries of 16-byte
// keys and 100-byte values; the package doc reports the figure.
func BenchmarkMemory1M(b *testing.B) {
	const n = 1 << 20
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := New(Config{MaxBytes: 1 << 40})
		key := make([]byte, 16)
		v := make([]byte, 100)
		for j := 0; j < n; j++ {
			copy(key, fmt.Sprintf("%016d", j))
			s.Set(key, v, time.Hour)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := float64(after.HeapAlloc-before.HeapAlloc) / n
		b.ReportMetric(per, "heapB/entry")
		b.ReportMetric(per-116, "overheadB/entry")
		runtime.KeepAlive(s)
	}
}
