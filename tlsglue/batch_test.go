// batch_test.go: the write queue stores what is queued at one moment with
// one BatchSetter call.

package tlsglue

import (
	"context"
	"sync"
	"testing"
	"time"
)

// batchStore is a memStore whose Set can be held, and which records the
// sizes of the batches it is given.
type batchStore struct {
	*memStore
	hold    chan struct{} // Set waits for it to close
	holding chan struct{} // closed once Set is waiting
	once    sync.Once

	mu      sync.Mutex
	batches []int
}

func (s *batchStore) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	s.once.Do(func() { close(s.holding) })
	<-s.hold
	return s.memStore.Set(ctx, key, value, ttl)
}

func (s *batchStore) SetBatch(ctx context.Context, keys, values [][]byte, ttls []time.Duration) []error {
	s.mu.Lock()
	s.batches = append(s.batches, len(keys))
	s.mu.Unlock()
	errs := make([]error, len(keys))
	for i := range keys {
		errs[i] = s.memStore.Set(ctx, keys[i], values[i], ttls[i])
	}
	return errs
}

func TestWriteQueueBatches(t *testing.T) {
	store := &batchStore{memStore: newMemStore(), hold: make(chan struct{}), holding: make(chan struct{})}
	g, err := New(store, Options{Writers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	job := func() writeJob { return writeJob{h: newHandle(), state: []byte("state"), ttl: time.Minute} }
	g.w.enqueue(job())
	<-store.holding // the one worker is busy with the first write
	const queued = 10
	for range queued {
		if !g.w.enqueue(job()) {
			t.Fatal("queue refused a write")
		}
	}
	close(store.hold)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	batches := store.batches
	store.mu.Unlock()
	if len(batches) != 1 || batches[0] != queued {
		t.Fatalf("batches %v, want one of %d", batches, queued)
	}
	if n := store.len(); n != queued+1 {
		t.Fatalf("%d entries stored, want %d", n, queued+1)
	}
	if got := value(g.m.writes[wrOK]); got != queued+1 {
		t.Fatalf("writes ok = %v, want %d", got, queued+1)
	}
}
