// example_test.go: adopting tlsglue in a Go TLS server.

package tlsglue_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlsring/tlsring/tlsglue"
)

// Example shows the adoption: one Install call on the server's Config. In
// production the store is the process's ring member:
//
//	store, err := peer.New(peer.Config{Self: self, Members: members, TLS: clusterTLS})
func Example() {
	store := newMapStore() // stand-in for *peer.Peer
	cfg := &tls.Config{ /* Certificates, NextProtos, ... as before */ }
	if err := tlsglue.Install(cfg, store, tlsglue.Options{}); err != nil {
		log.Fatal(err)
	}
	// ln, err := tls.Listen("tcp", ":443", cfg), or http.Server{TLSConfig: cfg}, or quic-go.
	fmt.Println(cfg.WrapSession != nil, cfg.UnwrapSession != nil)
	// Output: true true
}

// ExampleNew shows the explicit lifecycle and metrics registration.
func ExampleNew() {
	store := newMapStore()
	reg := prometheus.NewRegistry()
	metrics := tlsglue.NewMetrics(prometheus.Labels{"server": "a"})
	reg.MustRegister(metrics)

	glue, err := tlsglue.New(store, tlsglue.Options{
		Deadline:  2 * time.Millisecond,
		SingleUse: true,
		Label:     "billing-api",
		Metrics:   metrics,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer glue.Close() // or glue.Shutdown(ctx) to drain pending writes
	cfg := &tls.Config{}
	if err := glue.Install(cfg); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	// Output: ready
}

// mapStore is the smallest Store: a map with TTLs.
type mapStore struct {
	mu sync.Mutex
	m  map[string]mapEntry
}

type mapEntry struct {
	v   []byte
	exp time.Time
}

func newMapStore() *mapStore { return &mapStore{m: map[string]mapEntry{}} }

func (s *mapStore) Get(_ context.Context, k []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(k)]
	if !ok || time.Now().After(e.exp) {
		return nil, tlsglue.ErrNotFound
	}
	return e.v, nil
}

func (s *mapStore) Set(_ context.Context, k, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[string(k)] = mapEntry{v: append([]byte(nil), v...), exp: time.Now().Add(ttl)}
	return nil
}

func (s *mapStore) Take(ctx context.Context, k []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(k)]
	delete(s.m, string(k))
	if !ok || time.Now().After(e.exp) {
		return nil, tlsglue.ErrNotFound
	}
	return e.v, nil
}

func (s *mapStore) Delete(_ context.Context, k []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, string(k))
	return nil
}
