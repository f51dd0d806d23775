// simstore.go: a member's store as the simulator keeps it. It charges
// exactly what peer/store charges (key, value and store.EntryOverhead per
// entry, key and EntryOverhead per tombstone), expires entries at their
// TTL the way peer/store does (a read drops an expired entry, every insert
// reclaims up to two expired entries from the cold end, tombstones live
// for the entry's remaining lifetime, at most the tombstone TTL) and
// evicts least recently used entries at MaxBytes; storeModelTest checks it
// against peer/store op by op. It keeps no key or value bytes (a session is
// its 64-bit placement token), so 1000 members and millions of sessions fit
// in memory, and it is deterministic where peer/store shards by a random
// hash seed. One difference: peer/store evicts within each of its 16
// shards' sixteenth of MaxBytes; this model evicts across the whole.

package simulations

import (
	"github.com/tlsring/tlsring/peer/store"
	"github.com/tlsring/tlsring/ring"
)

type sentry struct {
	key        uint64
	expires    int64
	size       int32 // value bytes; 0 for a tombstone
	tomb       bool
	prev, next int32
}

// simStore is one member's store.
type simStore struct {
	idx      map[uint64]int32
	ents     []sentry // ents[0] is the LRU sentinel: ents[0].next most recent
	free     []int32
	bytes    int64
	max      int64
	maxEntry int64 // peer/store refuses an entry above one shard's share
	maxTomb  int64
	entries  int64
	tombs    int64
	evicted  int64
	expired  int64
}

func newSimStore(maxBytes, tombTTL int64) *simStore {
	s := &simStore{idx: make(map[uint64]int32), max: maxBytes, maxEntry: maxBytes / 16, maxTomb: tombTTL}
	s.ents = append(s.ents, sentry{})
	return s
}

func entryCost(size int32) int64 { return int64(ring.TokenKeyLen) + int64(size) + store.EntryOverhead }

func (s *simStore) unlink(i int32) {
	e := &s.ents[i]
	s.ents[e.prev].next = e.next
	s.ents[e.next].prev = e.prev
}

func (s *simStore) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = 0, s.ents[0].next
	s.ents[s.ents[0].next].prev = i
	s.ents[0].next = i
}

func (s *simStore) remove(i int32) {
	s.unlink(i)
	e := &s.ents[i]
	delete(s.idx, e.key)
	s.bytes -= entryCost(e.size)
	if e.tomb {
		s.tombs--
	} else {
		s.entries--
	}
	s.free = append(s.free, i)
}

func (s *simStore) insert(key uint64, size int32, expires int64, tomb bool, now int64) {
	c := entryCost(size)
	s.reclaim(now, 2)
	for s.bytes+c > s.max && s.ents[0].prev != 0 {
		old := s.ents[0].prev
		wasTomb := s.ents[old].tomb
		s.remove(old)
		if !wasTomb {
			s.evicted++
		}
	}
	var i int32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.ents = append(s.ents, sentry{})
		i = int32(len(s.ents) - 1)
	}
	s.ents[i] = sentry{key: key, expires: expires, size: size, tomb: tomb}
	s.pushFront(i)
	s.idx[key] = i
	s.bytes += c
	if tomb {
		s.tombs++
	} else {
		s.entries++
	}
}

func (s *simStore) reclaim(now int64, n int) {
	for ; n > 0; n-- {
		i := s.ents[0].prev
		if i == 0 || s.ents[i].expires > now {
			return
		}
		tomb := s.ents[i].tomb
		s.remove(i)
		if !tomb {
			s.expired++
		}
	}
}

// get reports whether key holds an unexpired entry, refreshing it.
func (s *simStore) get(key uint64, now int64) bool {
	i, ok := s.idx[key]
	if !ok || s.ents[i].tomb {
		return false
	}
	if s.ents[i].expires <= now {
		s.remove(i)
		s.expired++
		return false
	}
	s.unlink(i)
	s.pushFront(i)
	return true
}

// take removes key's entry, leaving a tombstone, and reports whether it was there.
func (s *simStore) take(key uint64, now int64) bool {
	i, ok := s.idx[key]
	if !ok || s.ents[i].tomb {
		return false
	}
	exp := s.ents[i].expires
	s.remove(i)
	if exp <= now {
		s.expired++
		return false
	}
	s.bury(key, exp, now)
	return true
}

func (s *simStore) bury(key uint64, expires, now int64) {
	expires = min(expires, now+s.maxTomb)
	if expires <= now {
		return
	}
	s.insert(key, 0, expires, true, now)
}

// del removes key, leaving a tombstone.
func (s *simStore) del(key uint64, now int64) {
	exp := now + s.maxTomb
	if i, ok := s.idx[key]; ok {
		if !s.ents[i].tomb {
			exp = s.ents[i].expires
		}
		s.remove(i)
	}
	s.bury(key, exp, now)
}

// deleted reports an unexpired tombstone for key.
func (s *simStore) deleted(key uint64, now int64) bool {
	i, ok := s.idx[key]
	return ok && s.ents[i].tomb && s.ents[i].expires > now
}

// set stores key, replacing what was there.
func (s *simStore) set(key uint64, size int32, expires, now int64) bool {
	if expires <= now || entryCost(size) > s.maxEntry {
		return false
	}
	if i, ok := s.idx[key]; ok {
		s.remove(i)
	}
	s.insert(key, size, expires, false, now)
	return true
}

// add stores key unless it holds an unexpired entry or tombstone.
func (s *simStore) add(key uint64, size int32, expires, now int64) bool {
	if expires <= now || entryCost(size) > s.maxEntry {
		return false
	}
	if i, ok := s.idx[key]; ok {
		if s.ents[i].expires > now {
			return false
		}
		tomb := s.ents[i].tomb
		s.remove(i)
		if !tomb {
			s.expired++
		}
	}
	s.insert(key, size, expires, false, now)
	return true
}

// drop removes key's entry without a tombstone.
func (s *simStore) drop(key uint64) {
	if i, ok := s.idx[key]; ok && !s.ents[i].tomb {
		s.remove(i)
	}
}

// each calls fn for every unexpired entry, most recent first.
func (s *simStore) each(now int64, fn func(key uint64, size int32, expires int64)) {
	for i := s.ents[0].next; i != 0; i = s.ents[i].next {
		e := s.ents[i]
		if !e.tomb && e.expires > now {
			fn(e.key, e.size, e.expires)
		}
	}
}
