// A reproduction of 600 memcached clients that pipeline gets of a 64 KiB
// value and never read: the face used to hold every reply they asked for
// (a member went from 124 MiB to 2.6 GB). Now each connection holds at
// most one value, stops reading while it cannot write, and is cut off.

package memcache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Attack parameters: hostileConns connections, each sending hostileGets
// pipelined gets of the same 64 KiB value hostileKeys times over.
const (
	hostileConns = 600
	hostileGets  = 64
	hostileKeys  = MaxKeysPerGet
)

// perConnBound is what one stalled connection may keep alive on the heap:
// the one value it is writing (64 KiB), its 4 KiB read and write buffers,
// the keys of its command (64 one-byte keys here, 1.7 KiB) and
// bookkeeping: about 74 KiB measured (heap profile), under 96 KiB. Without the bound, the face held every value of a command (64
// values, 4 MiB) per connection: 2.3 GiB for 600 connections.
const perConnBound = DefaultMaxValueSize + 32<<10

// liveBound is the bound on the live heap the attack may add once every
// hostile connection is stalled; peakBound the bound on HeapInuse while
// it runs: three times the live bound, for GOGC=100 lets the heap grow to
// twice what the last collection marked, and what connections allocate
// during a collection counts as marked.
const (
	liveBound = hostileConns * perConnBound
	peakBound = 3 * liveBound
)

// countingBackend counts Gets.
type countingBackend struct {
	Backend
	gets atomic.Int64
}

func (b *countingBackend) Get(ctx context.Context, k []byte) ([]byte, error) {
	b.gets.Add(1)
	return b.Backend.Get(ctx, k)
}

// heapSampler records the peak of HeapInuse until stopped.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done sync.WaitGroup
}

func sampleHeap(every time.Duration) *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.done.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak.Load()
}

// rss returns the process's resident set (VmRSS), or "" off Linux.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// heapAlloc returns the live heap: HeapAlloc right after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestServerHostileReaders(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 600 connections")
	}
	peers := newRing(t, 1)
	val := bytes.Repeat([]byte("v"), DefaultMaxValueSize)
	if err := peers[0].Set(context.Background(), []byte("k"), val, time.Hour); err != nil {
		t.Fatal(err)
	}
	logs := newLogCounter()
	m := NewMetrics(nil)
	backend := &countingBackend{Backend: peers[0]}
	s := &Server{Backend: backend, Logger: slog.New(logs), Metrics: m}
	addr := serve(t, s)

	// A well-behaved client, from its own address, and what it expects.
	good := dialFrom(t, "127.0.0.2", addr)
	want := fmt.Sprintf("VALUE k 0 %d\r\n%s\r\nEND\r\n", len(val), val)
	good.send("get k\r\n")
	good.expect(want)

	base := heapAlloc()
	t.Logf("before the attack: live heap %.1f MiB, RSS %s", float64(base)/(1<<20), rss())
	sampler := sampleHeap(20 * time.Millisecond)

	// The attackers spread over several addresses, as the per-source
	// limit would stop one address at half of MaxConns.
	cmd := "get" + strings.Repeat(" k", hostileKeys) + "\r\n"
	req := []byte(strings.Repeat(cmd, hostileGets))
	attack := time.Now()
	var dialers sync.WaitGroup
	var next atomic.Int32
	for range 8 {
		dialers.Go(func() {
			for i := int(next.Add(1)) - 1; i < hostileConns; i = int(next.Add(1)) - 1 {
				src := fmt.Sprintf("127.0.1.%d", 1+i%6)
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				t.Cleanup(func() { c.Close() })
				c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				// The requests fit the server's receive buffer: the write ends.
				if _, err := c.Write(req); err != nil {
					t.Errorf("hostile %d: %v", i, err)
					return
				}
			}
		})
	}
	dialers.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d hostile connections sent %d gets of %d keys each", hostileConns, hostileGets, hostileKeys)

	// Once every hostile connection is stalled (no more Gets), the live
	// heap is what they hold.
	var last int64 = -1
	stable := 0
	waitUntil(t, time.Minute, "the hostile connections to stop fetching", func() bool {
		time.Sleep(100 * time.Millisecond)
		n := backend.gets.Load()
		if n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
		return stable == 5
	})
	live := heapAlloc()
	open := value(m.conns)
	// While they hold the face, the good client is answered.
	answered := 0
	deadline := time.Now().Add(2 * time.Minute)
	for value(m.stalled) < hostileConns {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes, %v of %d hostile clients cut off", value(m.stalled), hostileConns)
		}
		good.c.SetDeadline(time.Now().Add(30 * time.Second))
		good.send("get k\r\n")
		good.expect(want)
		answered++
	}
	peak := sampler.Stop()
	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
	t.Logf("during the attack: live heap %.1f MiB with %v connections open (+%.1f MiB, bound +%.1f MiB), HeapInuse up to %.1f MiB (+%.1f MiB, bound +%.1f MiB); RSS now %s; the good client got %d answers",
		mib(live), open, mib(live-base), mib(liveBound), mib(peak), mib(peak-base), mib(peakBound), rss(), answered)
	if live > base+liveBound {
		t.Errorf("the live heap grew by %.1f MiB, bound %.1f MiB", mib(live-base), mib(liveBound))
	}
	if peak > base+peakBound {
		t.Errorf("HeapInuse grew by %.1f MiB, bound %.1f MiB", mib(peak-base), mib(peakBound))
	}
	if v := value(m.stalled.WithLabelValues(stallWrite)); v != hostileConns {
		t.Errorf("stalled{during=write} = %v, want %d", v, hostileConns)
	}
	// At most one log line per interval.
	n, most := logs.matching("did not read its replies"), 1+int(time.Since(attack)/logInterval)
	t.Logf("%d stall log lines in %v", n, time.Since(attack).Round(time.Millisecond))
	if n < 1 || n > most {
		t.Errorf("%d stall log lines for %d stalls in %v, want 1 to %d", n, hostileConns, time.Since(attack).Round(time.Second), most)
	}
	waitUntil(t, time.Minute, "the hostile connections to close", func() bool { return value(m.conns) == 1 })
	good.send("get k\r\n")
	good.expect(want)
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
