// keyring.go: Keyring, the keys a member holds, and their refresh from
// (and creation in) the ring.

package ticketkeys

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
)

// KeyLen is the length of one epoch's key.
const KeyLen = 32

// Store is where keys are agreed: a cluster-wide key/value store with TTLs;
// *peer.Peer satisfies it.
type Store interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Set(ctx context.Context, key, value []byte, ttl time.Duration) error
}

// Ring is an optional interface of a Store that says which member owns a
// key, as *peer.Peer does; the owner of an epoch's entry makes its key.
type Ring interface {
	Owners(key []byte) []string
	Self() string
}

// Key is one epoch's ticket key, as Keys returns it.
type Key struct {
	Epoch  uint64
	ID     [4]byte // first bytes of an HMAC of Secret: tells apart two keys of one epoch
	Secret [KeyLen]byte
	Local  bool // made here while the ring was unreachable: other members do not have it
}

// Keyring holds this member's ticket keys and keeps them in step with the
// ring. Its methods are safe for concurrent use.
type Keyring struct {
	s    Store
	ring Ring // nil: act as owner of every epoch
	o    Options
	m    *Metrics
	log  *slog.Logger

	refreshMu sync.Mutex // one refresh at a time

	mu     sync.RWMutex
	keys   map[uint64][]*Key // per epoch; ring keys before local ones
	absent map[uint64]bool   // past epochs the ring did not have

	lastEpoch uint64 // of the previous Refresh; guarded by refreshMu
}

// New returns a Keyring agreeing keys through s. It holds no key until
// Refresh or Run, but Seal makes a local key rather than fail.
func New(s Store, opts Options) (*Keyring, error) {
	if s == nil {
		return nil, errors.New("ticketkeys: nil Store")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r, _ := s.(Ring)
	return &Keyring{s: s, ring: r, o: o, m: o.Metrics, log: o.Logger,
		keys: make(map[uint64][]*Key), absent: make(map[uint64]bool)}, nil
}

// Metrics returns the Keyring's collectors.
func (k *Keyring) Metrics() *Metrics { return k.m }

// Period returns the rotation period.
func (k *Keyring) Period() time.Duration { return k.o.Period }

// Retention returns how long after its epoch a key still opens tickets.
func (k *Keyring) Retention() time.Duration { return k.o.Retention }

func (k *Keyring) epochAt(t time.Time) uint64 {
	return uint64(t.UnixNano() / int64(k.o.Period))
}

func (k *Keyring) start(e uint64) time.Time {
	return time.Unix(0, int64(e)*int64(k.o.Period))
}

// expiry is when epoch e's key is erased: the end of the epoch plus the
// retention.
func (k *Keyring) expiry(e uint64) time.Time {
	return k.start(e + 1).Add(k.o.Retention)
}

func (k *Keyring) name(e uint64) []byte {
	return strconv.AppendUint([]byte(k.o.Prefix), e, 10)
}

func keyID(secret *[KeyLen]byte) (id [4]byte) {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write([]byte("tlsring ticket key id"))
	copy(id[:], mac.Sum(nil))
	return id
}

func newKey(e uint64, secret []byte, local bool) *Key {
	key := &Key{Epoch: e, Local: local}
	copy(key.Secret[:], secret)
	key.ID = keyID(&key.Secret)
	return key
}

// Run refreshes the keys until ctx is done, every Period/20 (at most every
// 10 s, at least every 50 ms), calling Options.OnChange after changes.
func (k *Keyring) Run(ctx context.Context) error {
	tick := min(max(k.o.Period/20, 50*time.Millisecond), 10*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if changed, _ := k.Refresh(ctx); changed && k.o.OnChange != nil {
			k.o.OnChange(k)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh brings the key set up to date once: erases expired keys, fetches
// the keys of the current epoch, of past epochs still retained and (from
// half-way through the current epoch) of the next one, and makes the keys
// this member owns. It reports whether the key set or the current epoch
// changed, and the errors talking to the ring (the keys held are still
// usable).
func (k *Keyring) Refresh(ctx context.Context) (changed bool, err error) {
	k.refreshMu.Lock()
	defer k.refreshMu.Unlock()
	now := k.o.Now()
	cur := k.epochAt(now)
	k.m.epoch.Set(float64(cur))
	changed = k.expire(now) || cur != k.lastEpoch
	k.lastEpoch = cur
	var errs []error
	note := func(c bool, err error) {
		changed = changed || c
		if err != nil {
			errs = append(errs, err)
		}
	}
	// Past epochs whose keys may still open tickets (a restarted or new
	// member), oldest first.
	for e := k.epochAt(now.Add(-k.o.Retention - k.o.Period)); e < cur; e++ {
		if k.expiry(e).After(now) && !k.hasRing(e) && !k.isAbsent(e) {
			note(k.fetch(ctx, e, false))
		}
	}
	if !k.hasRing(cur) {
		create := k.owns(cur) || now.Sub(k.start(cur)) >= k.o.Period/8
		note(k.fetch(ctx, cur, create))
	}
	if now.Sub(k.start(cur)) >= k.o.Period/2 && !k.hasRing(cur+1) {
		note(k.fetch(ctx, cur+1, k.owns(cur+1)))
	}
	k.gauge()
	return changed, errors.Join(errs...)
}

// owns reports whether this member makes epoch e's key.
func (k *Keyring) owns(e uint64) bool {
	if k.ring == nil {
		return true
	}
	owners := k.ring.Owners(k.name(e))
	return len(owners) == 0 || owners[0] == k.ring.Self()
}

// fetch gets epoch e's key from the ring; when the ring does not have it
// and create is set, it makes one and stores it.
func (k *Keyring) fetch(ctx context.Context, e uint64, create bool) (bool, error) {
	name := k.name(e)
	gctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	v, err := k.s.Get(gctx, name)
	cancel()
	switch {
	case err == nil && len(v) == KeyLen:
		added := k.add(newKey(e, v, false))
		clear(v)
		return added, nil
	case err == nil:
		k.log.Warn("ticketkeys: ring entry is not a key; ignoring it", "name", string(name), "len", len(v))
		clear(v)
		return false, nil
	case !isNotFound(err):
		return false, errors.New("ticketkeys: get " + string(name) + ": " + err.Error())
	}
	if e < k.epochAt(k.o.Now()) && !create {
		k.mu.Lock()
		k.absent[e] = true
		k.mu.Unlock()
	}
	if !create {
		return false, nil
	}
	var secret [KeyLen]byte
	rand.Read(secret[:])
	ttl := k.expiry(e).Sub(k.o.Now())
	sctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	err = k.s.Set(sctx, name, secret[:], ttl)
	cancel()
	key := newKey(e, secret[:], err != nil)
	clear(secret[:])
	if err != nil {
		k.log.Warn("ticketkeys: cannot store a new key; sealing under a local one", "epoch", e, "err", err)
		return k.add(key), errors.New("ticketkeys: set " + string(name) + ": " + err.Error())
	}
	k.log.Debug("ticketkeys: made the key of an epoch", "epoch", e)
	return k.add(key), nil
}

// add keeps key unless an equal one is held; ring keys go before local ones.
func (k *Keyring) add(key *Key) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	list := k.keys[key.Epoch]
	for _, h := range list {
		if h.ID == key.ID && h.Secret == key.Secret {
			if h.Local && !key.Local {
				h.Local = false
			}
			return false
		}
	}
	list = append(list, key)
	slices.SortStableFunc(list, func(a, b *Key) int {
		switch {
		case a.Local == b.Local:
			return 0
		case a.Local:
			return 1
		}
		return -1
	})
	k.keys[key.Epoch] = list
	delete(k.absent, key.Epoch)
	return true
}

// expire erases (zeroes and drops) every key past its retention.
func (k *Keyring) expire(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	changed := false
	for e, list := range k.keys {
		if !k.expiry(e).After(now) {
			for _, key := range list {
				clear(key.Secret[:])
			}
			delete(k.keys, e)
			changed = true
		}
	}
	for e := range k.absent {
		if !k.expiry(e).After(now) {
			delete(k.absent, e)
		}
	}
	return changed
}

func (k *Keyring) hasRing(e uint64) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	list := k.keys[e]
	return len(list) > 0 && !list[0].Local
}

func (k *Keyring) isAbsent(e uint64) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.absent[e]
}

func (k *Keyring) gauge() {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ring, local := 0, 0
	for _, list := range k.keys {
		for _, key := range list {
			if key.Local {
				local++
			} else {
				ring++
			}
		}
	}
	k.m.held.WithLabelValues("ring").Set(float64(ring))
	k.m.held.WithLabelValues("local").Set(float64(local))
}

// sealKey returns the key to seal with now: the current epoch's preferred
// key, or a local one made on the spot when none is held.
func (k *Keyring) sealKey(now time.Time) (Key, time.Time) {
	e := k.epochAt(now)
	k.mu.RLock()
	list := k.keys[e]
	if len(list) > 0 {
		key := *list[0]
		k.mu.RUnlock()
		return key, k.expiry(e)
	}
	k.mu.RUnlock()
	var secret [KeyLen]byte
	rand.Read(secret[:])
	key := newKey(e, secret[:], true)
	clear(secret[:])
	k.add(key)
	k.log.Warn("ticketkeys: no key for the current epoch yet; sealing under a local one", "epoch", e)
	return *key, k.expiry(e)
}

// lookup returns the held key of epoch e with this ID.
func (k *Keyring) lookup(e uint64, id [4]byte) (Key, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, key := range k.keys[e] {
		if key.ID == id {
			return *key, true
		}
	}
	return Key{}, false
}

// Keys returns copies of the keys held that may still open tickets: the
// key to seal with first (the current epoch's), then the next epoch's if
// held, then older ones, newest first. Keys of one epoch: ring before local.
// Callers should clear the secrets when done.
func (k *Keyring) Keys() []Key {
	now := k.o.Now()
	cur := k.epochAt(now)
	k.mu.RLock()
	defer k.mu.RUnlock()
	epochs := make([]uint64, 0, len(k.keys))
	for e := range k.keys {
		if k.expiry(e).After(now) {
			epochs = append(epochs, e)
		}
	}
	rank := func(e uint64) int64 {
		switch {
		case e == cur:
			return -2
		case e == cur+1:
			return -1
		}
		return int64(cur) - int64(e)
	}
	slices.SortFunc(epochs, func(a, b uint64) int { return int(rank(a) - rank(b)) })
	var out []Key
	for _, e := range epochs {
		for _, key := range k.keys[e] {
			out = append(out, *key)
		}
	}
	return out
}

// notFounder is how a Store's own errors (peer.ErrNotFound) report a miss.
type notFounder interface{ NotFound() bool }

// ErrNotFound may be returned by a Store to report a miss; so may any
// error with a NotFound() bool method returning true.
var ErrNotFound = errors.New("ticketkeys: not found")

func isNotFound(err error) bool {
	if errors.Is(err, ErrNotFound) {
		return true
	}
	var nf notFounder
	return errors.As(err, &nf) && nf.NotFound()
}
