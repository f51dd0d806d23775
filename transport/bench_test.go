// Benchmarks of the QUIC transport and the wire codec. The comparison
// with a bare TCP floor and memcached lives in benchcmp (see
// testdata/bench.sh).

package transport

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

func benchPair(b *testing.B) (*member, *member, [][]byte) {
	ca := transporttest.NewCA(b)
	a, s := startMember(b, ca, nil), startMember(b, ca, nil)
	keys := make([][]byte, 1000)
	val := make([]byte, 1024)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("session-key-%032d", i))
		s.store.put(string(keys[i]), val)
	}
	if _, err := a.Call(context.Background(), s.Addr(), &Request{Op: OpPing}); err != nil {
		b.Fatal(err)
	}
	return a, s, keys
}

// BenchmarkQUICGet: one lookup at a time of a 1 KiB value, with a
// deadline as tlsglue sets one.
func BenchmarkQUICGet(b *testing.B) {
	a, s, keys := benchPair(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := a.Call(ctx, s.Addr(), &Request{Op: OpGet, Key: keys[i%len(keys)]})
		cancel()
		if err != nil || len(r.Value) != 1024 {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkQUICGetParallel: 64 lookups in flight on one connection.
func BenchmarkQUICGetParallel(b *testing.B) {
	a, s, keys := benchPair(b)
	b.ReportAllocs()
	b.SetParallelism(64 / max(1, testingGOMAXPROCS()))
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err := a.Call(ctx, s.Addr(), &Request{Op: OpGet, Key: keys[i%len(keys)]})
			cancel()
			if err != nil || len(r.Value) != 1024 {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkEncodeRequest(b *testing.B) {
	req := &Request{Op: OpSet, Key: make([]byte, 32), Value: make([]byte, 1024), TTL: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		bp := getBuf(requestSize(req))
		*bp = appendRequest(*bp, 1, 1000, req)
		putBuf(bp)
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	frame := appendRequest(nil, 1, 1000, &Request{Op: OpSet, Key: make([]byte, 32), Value: make([]byte, 1024), TTL: time.Hour})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRequest(frame[frameLenSize:]); err != nil {
			b.Fatal(err)
		}
	}
}
