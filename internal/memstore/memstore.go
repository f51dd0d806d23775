// Package memstore is the one in-memory session store of the repository's
// tests: a map with TTLs that satisfies tlsglue.Store, ticketkeys.Store and
// the memcached face's Backend, with knobs that make it slow, silent or
// failing, and counters of the calls it got. It is for tests only; the
// real store is a ring member (peer.Peer).
package memstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is the miss every method reports. It has a NotFound() bool
// method, as peer.ErrNotFound does, so tlsglue and ticketkeys recognise it
// without importing this package.
var ErrNotFound error = notFound{}

type notFound struct{}

func (notFound) Error() string  { return "memstore: not found" }
func (notFound) NotFound() bool { return true }

// Store is a map with TTLs. The zero value is not ready: use New. Its
// exported fields may be changed at any time.
type Store struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]entry

	// Gets, Takes, Sets and Deletes count the calls made.
	Gets, Takes, Sets, Deletes atomic.Int64

	// Delay, when positive (nanoseconds), is waited (or ctx, whichever
	// ends first) before a Get or Take answers.
	Delay atomic.Int64
	// Silent makes Get and Take wait for ctx and never answer.
	Silent atomic.Bool
	// Fail, when set, is returned by every Get, Take and Set.
	Fail atomic.Pointer[error]
	// BlockSets makes Set wait for ctx (a store that never acknowledges).
	BlockSets atomic.Bool
}

type entry struct {
	value   []byte
	expires time.Time
}

// New returns an empty Store on the clock now (nil = time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, m: make(map[string]entry)}
}

// wait applies Silent, Delay and Fail to a read.
func (s *Store) wait(ctx context.Context) error {
	if s.Silent.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if d := time.Duration(s.Delay.Load()); d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e := s.Fail.Load(); e != nil {
		return *e
	}
	return nil
}

// Get returns a copy of key's unexpired value, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	s.Gets.Add(1)
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(key)]
	if !ok || !e.expires.After(s.now()) {
		return nil, ErrNotFound
	}
	return append([]byte(nil), e.value...), nil
}

// Take returns key's unexpired value and deletes it, or ErrNotFound.
func (s *Store) Take(ctx context.Context, key []byte) ([]byte, error) {
	s.Takes.Add(1)
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(key)]
	delete(s.m, string(key))
	if !ok || !e.expires.After(s.now()) {
		return nil, ErrNotFound
	}
	return e.value, nil
}

// Set stores a copy of value under key for ttl.
func (s *Store) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	s.Sets.Add(1)
	if s.BlockSets.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if e := s.Fail.Load(); e != nil {
		return *e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[string(key)] = entry{value: append([]byte(nil), value...), expires: s.now().Add(ttl)}
	return nil
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key []byte) error {
	s.Deletes.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, string(key))
	return nil
}

// Len returns the number of entries held, expired ones included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Holds reports whether key has an unexpired entry, without counting a Get.
func (s *Store) Holds(key []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(key)]
	return ok && e.expires.After(s.now())
}

// Each calls f on every entry's value and stores what f returns in its
// place (under the lock): tests corrupt or inspect stored sessions with it.
func (s *Store) Each(f func(key string, value []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		e.value = f(k, e.value)
		s.m[k] = e
	}
}

// Peek returns key's value and expiry as stored (expired or not), without
// counting a Get.
func (s *Store) Peek(key []byte) (value []byte, expires time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(key)]
	return e.value, e.expires, ok
}

// Range calls f on every entry (under the lock; f must not call s).
func (s *Store) Range(f func(key string, value []byte, expires time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		f(k, e.value, e.expires)
	}
}
