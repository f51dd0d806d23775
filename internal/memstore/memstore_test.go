package memstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	now := time.Unix(1000, 0)
	s := New(func() time.Time { return now })
	ctx := context.Background()
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if err := s.Set(ctx, []byte("k"), []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	now = now.Add(time.Second)
	if s.Holds([]byte("k")) {
		t.Fatal("an entry outlived its TTL")
	}
	s.Set(ctx, []byte("k"), []byte("v"), time.Minute)
	if v, err := s.Take(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Take = %q, %v", v, err)
	}
	if _, err := s.Take(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Take: %v", err)
	}
	boom := errors.New("boom")
	s.Fail.Store(&boom)
	if _, err := s.Get(ctx, []byte("k")); err != boom {
		t.Fatalf("Get with Fail: %v", err)
	}
	s.Fail.Store(nil)
	s.Silent.Store(true)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := s.Get(tctx, []byte("k")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with Silent: %v", err)
	}
	if s.Gets.Load() != 4 || s.Takes.Load() != 2 || s.Sets.Load() != 2 {
		t.Fatalf("counters: %d gets, %d takes, %d sets", s.Gets.Load(), s.Takes.Load(), s.Sets.Load())
	}
	var nf interface{ NotFound() bool }
	if !errors.As(ErrNotFound, &nf) || !nf.NotFound() {
		t.Fatal("ErrNotFound has no NotFound() true")
	}
}
