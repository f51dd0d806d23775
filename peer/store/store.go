// Package store is a member's local session store: a byte-bounded LRU with a
// TTL per entry, sharded so that concurrent handshakes on different cores do
// not serialise on one lock.
//
// Each shard is a mutex, a map and an intrusive LRU list. We started from
// github.com/golang/groupcache/lru, as its design is the model here, and
// left it for three measured reasons: it cannot iterate (rebalancing and
// hand-off on shutdown must walk the entries), it cannot peek at its coldest
// entry (needed to reclaim expired entries without a sweeper goroutine), and
// its interface{} keys and values cost two extra allocations and ~60 bytes
// per entry. An entry costs
// len(key) + len(value) + EntryOverhead bytes against MaxBytes; when a Set
// would exceed a shard's share, the least recently used entries of that
// shard are evicted first. Expired entries are never returned: Get and Take
// drop them when they meet them, and every Set also reclaims a few expired
// entries from the cold end of its shard.
//
// # Tombstones
//
// Delete and Take leave a tombstone: the key without its value, charged
// len(key)+EntryOverhead, living as long as the entry would have (at most
// Config.TombstoneTTL). Set replaces a tombstone (an explicit write wins);
// Add, which state transfer, hand-off and delayed writes use, refuses a key
// with a tombstone, so a copy of a deleted session that arrives late from
// another member (a transfer that read it before the delete, a member that
// was paused) cannot bring it back. Tombstones are evicted like entries, so
// under memory pressure the oldest lose that protection first.
//
// Measured (BenchmarkMemory1M, 1M entries, 16-byte keys, 100-byte values,
// Go 1.26, amd64): 245 heap bytes per entry in all, so 129 bytes of
// overhead beyond key and value (item header, map slot, allocation
// rounding). EntryOverhead is set above that, so MaxBytes bounds the real
// heap and not just the payload.
package store

import (
	"hash/maphash"
	"sync"
	"time"
)

// EntryOverhead is what one entry is charged beyond its key and value
// bytes: the item header, map slot and allocation rounding, measured by
// BenchmarkMemory1M (129 bytes) and rounded up.
const EntryOverhead = 160

// DefaultMaxBytes is the bound used when Config.MaxBytes is zero: 64 MiB,
// about 230k TLS 1.3 sessions (~100 sealed bytes and a 16-byte key each).
const DefaultMaxBytes = 64 << 20

// DefaultTombstoneTTL is the longest a tombstone lives when
// Config.TombstoneTTL is zero: long enough to outlast a state transfer, a
// delayed write's delivery or a paused member's return.
const DefaultTombstoneTTL = 10 * time.Minute

// shardCount is the number of independently locked shards.
const shardCount = 16

// Config configures a Store.
type Config struct {
	// MaxBytes bounds keys, values and EntryOverhead over all entries.
	// Zero means DefaultMaxBytes.
	MaxBytes int64
	// Now returns the current time. Nil means time.Now; simulations pass
	// a virtual clock.
	Now func() time.Time
	// TombstoneTTL bounds how long a deleted key is remembered (see the
	// package doc). Zero means DefaultTombstoneTTL.
	TombstoneTTL time.Duration
}

// Stats are a store's counters and gauges.
type Stats struct {
	Entries     int64 // entries held now (some may have expired unseen), tombstones not counted
	Tombstones  int64 // tombstones held now
	Bytes       int64 // bytes charged now, tombstones included
	Evictions   int64 // entries dropped to stay within MaxBytes
	Expirations int64 // entries dropped because their TTL passed
}

// Store is a bounded, concurrency-safe key/value store with TTLs.
type Store struct {
	seed     maphash.Seed
	now      func() time.Time
	maxShard int64
	maxTomb  int64 // longest tombstone lifetime, nanoseconds
	shards   [shardCount]shard
}

type shard struct {
	mu    sync.Mutex
	items map[string]*item
	head  item // sentinel: head.next is the most recently used, head.prev the least
	bytes int64
	stats Stats
	_     [64]byte // keep shards' locks off one cache line
}

type item struct {
	key        string
	value      []byte
	expires    int64 // unix nanoseconds
	tomb       bool  // a tombstone: the key was deleted; value is nil
	prev, next *item
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TombstoneTTL <= 0 {
		cfg.TombstoneTTL = DefaultTombstoneTTL
	}
	s := &Store{seed: maphash.MakeSeed(), now: cfg.Now, maxShard: cfg.MaxBytes / shardCount, maxTomb: int64(cfg.TombstoneTTL)}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.items = make(map[string]*item)
		sh.head.next, sh.head.prev = &sh.head, &sh.head
	}
	return s
}

// MaxEntrySize is the largest len(key)+len(value) a Set accepts.
func (s *Store) MaxEntrySize() int64 { return s.maxShard - EntryOverhead }

func cost(key string, value []byte) int64 {
	return int64(len(key)+len(value)) + EntryOverhead
}

func (s *Store) shard(key []byte) *shard {
	return &s.shards[maphash.Bytes(s.seed, key)%shardCount]
}

func (sh *shard) unlink(it *item) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
}

func (sh *shard) pushFront(it *item) {
	it.prev, it.next = &sh.head, sh.head.next
	sh.head.next.prev = it
	sh.head.next = it
}

func (sh *shard) remove(it *item) {
	sh.unlink(it)
	delete(sh.items, it.key)
	sh.bytes -= cost(it.key, it.value)
	if it.tomb {
		sh.stats.Tombstones--
	} else {
		sh.stats.Entries--
	}
}

// bury replaces it (already removed from the shard, or nil) by a tombstone
// for key that lives until min(expires, now+maxTomb). Called with sh.mu held.
func (s *Store) bury(sh *shard, key string, expires, now int64) {
	expires = min(expires, now+s.maxTomb)
	if expires <= now {
		return
	}
	t := &item{key: key, expires: expires, tomb: true}
	s.insert(sh, t, now)
	sh.stats.Tombstones++
}

// insert links it into sh, evicting from the cold end to make room, and
// charges it. Called with sh.mu held and no item under it.key.
func (s *Store) insert(sh *shard, it *item, now int64) {
	c := cost(it.key, it.value)
	sh.reclaimExpired(now, 2)
	for sh.bytes+c > s.maxShard && sh.head.prev != &sh.head {
		old := sh.head.prev
		sh.remove(old)
		if !old.tomb {
			sh.stats.Evictions++
		}
	}
	sh.items[it.key] = it
	sh.pushFront(it)
	sh.bytes += c
}

// Get returns the value stored under key and its remaining lifetime. The
// caller must not modify the returned slice.
func (s *Store) Get(key []byte) (value []byte, ttl time.Duration, ok bool) {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it := sh.items[string(key)] // no allocation: the compiler elides the conversion
	if it == nil || it.tomb {
		return nil, 0, false
	}
	if it.expires <= now {
		sh.remove(it)
		sh.stats.Expirations++
		return nil, 0, false
	}
	sh.unlink(it)
	sh.pushFront(it)
	return it.value, time.Duration(it.expires - now), true
}

// Take returns the value stored under key and removes it, atomically: of
// concurrent Takes of one key, exactly one returns it. It leaves a
// tombstone for the rest of the entry's lifetime.
func (s *Store) Take(key []byte) (value []byte, ttl time.Duration, ok bool) {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it := sh.items[string(key)]
	if it == nil || it.tomb {
		return nil, 0, false
	}
	sh.remove(it)
	if it.expires <= now {
		sh.stats.Expirations++
		return nil, 0, false
	}
	s.bury(sh, it.key, it.expires, now)
	return it.value, time.Duration(it.expires - now), true
}

// Delete removes key, leaving a tombstone for the rest of the entry's
// lifetime (for Config.TombstoneTTL when it held no entry), and reports
// whether an entry was there (expired or not).
func (s *Store) Delete(key []byte) bool {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	expires := now + s.maxTomb
	had := false
	if it := sh.items[string(key)]; it != nil {
		had = !it.tomb
		if had {
			expires = it.expires
		}
		sh.remove(it)
	}
	s.bury(sh, string(key), expires, now)
	return had
}

// Deleted reports whether key has an unexpired tombstone: it was deleted
// or taken here within its lifetime.
func (s *Store) Deleted(key []byte) bool {
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it := sh.items[string(key)]
	return it != nil && it.tomb && it.expires > now
}

// Drop removes key's entry without a tombstone: for entries this member no
// longer holds after a membership change, which may legitimately come back.
func (s *Store) Drop(key []byte) {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if it := sh.items[string(key)]; it != nil && !it.tomb {
		sh.remove(it)
	}
}

// Set stores a copy of value under key for ttl, replacing any earlier
// value. It reports false, storing nothing, when ttl is not positive or the
// entry alone exceeds MaxEntrySize.
func (s *Store) Set(key, value []byte, ttl time.Duration) bool {
	c := int64(len(key)+len(value)) + EntryOverhead
	if ttl <= 0 || c > s.maxShard {
		return false
	}
	it := &item{key: string(key), value: append([]byte(nil), value...)}
	sh := s.shard(key)
	now := s.now().UnixNano()
	it.expires = now + int64(ttl)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.items[it.key]; old != nil {
		sh.remove(old)
	}
	s.insert(sh, it, now)
	sh.stats.Entries++
	return true
}

// Add stores a copy of value under key for ttl unless the key holds an
// unexpired entry or a tombstone; it reports whether it stored. A copy
// that arrives from another member (state transfer, hand-off, a delayed
// write) goes through Add: sessions are written once, so what is here
// already is at least as new, and a tombstone means the session was used
// up or deleted.
func (s *Store) Add(key, value []byte, ttl time.Duration) bool {
	c := int64(len(key)+len(value)) + EntryOverhead
	if ttl <= 0 || c > s.maxShard {
		return false
	}
	sh := s.shard(key)
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.items[string(key)]; old != nil {
		if old.expires > now {
			return false
		}
		sh.remove(old)
		if !old.tomb {
			sh.stats.Expirations++
		}
	}
	it := &item{key: string(key), value: append([]byte(nil), value...), expires: now + int64(ttl)}
	s.insert(sh, it, now)
	sh.stats.Entries++
	return true
}

// reclaimExpired drops up to n expired entries from the cold end.
func (sh *shard) reclaimExpired(now int64, n int) {
	for ; n > 0; n-- {
		it := sh.head.prev
		if it == &sh.head || it.expires > now {
			return
		}
		sh.remove(it)
		if !it.tomb {
			sh.stats.Expirations++
		}
	}
}

// Range calls fn for every unexpired entry until fn returns false. It
// copies one shard's entries at a time, so fn may call other Store methods;
// entries set or removed during Range may or may not be seen. The value
// passed to fn must not be modified.
func (s *Store) Range(fn func(key, value []byte, ttl time.Duration) bool) {
	var batch []*item
	for i := range s.shards {
		sh := &s.shards[i]
		now := s.now().UnixNano()
		batch = batch[:0]
		sh.mu.Lock()
		for it := sh.head.next; it != &sh.head; it = it.next {
			if it.expires > now && !it.tomb {
				batch = append(batch, it)
			}
		}
		sh.mu.Unlock()
		for _, it := range batch {
			// key, value and expires never change after Set; reading them unlocked is safe.
			if !fn([]byte(it.key), it.value, time.Duration(it.expires-now)) {
				return
			}
		}
	}
}

// Stats returns the store's counters summed over shards.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Entries += sh.stats.Entries
		st.Tombstones += sh.stats.Tombstones
		st.Bytes += sh.bytes
		st.Evictions += sh.stats.Evictions
		st.Expirations += sh.stats.Expirations
		sh.mu.Unlock()
	}
	return st
}

// MaxBytes returns the store's bound.
func (s *Store) MaxBytes() int64 { return s.maxShard * shardCount }
