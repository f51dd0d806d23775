// Tests of what other parties can make a member hold or log: a caller that
// sends requests and never reads its answers, and a flood of refused
// handshakes.

package transport

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"github.com/tlsring/tlsring/transport/transporttest"
)

// TestCallerThatNeverReadsIsBoundedAndCutOff: an authenticated caller
// writes thousands of gets for a 64 KiB value on one stream and never reads
// an answer. The member stops reading its requests once the connection's
// budget is full, holds no more than the budget in waiting answers, cuts
// the caller off after the stall timeout (logging it once), and serves a
// well-behaved member all along.
func TestCallerThatNeverReadsIsBoundedAndCutOff(t *testing.T) {
	ca := transporttest.NewCA(t)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(nil)
	reg.MustRegister(metrics)
	const budget = 1 << 20
	m := startMember(t, ca, func(c *QUICConfig) {
		c.MaxConnBytes = budget
		c.StallTimeout = 300 * time.Millisecond
		c.Metrics = metrics
	})
	big := bytes.Repeat([]byte{'v'}, MaxValueSize)
	m.store.put("big", big)
	good := startMember(t, ca, nil)
	if _, err := good.Call(ctxTimeout(t, 5*time.Second), m.Addr(), &Request{Op: OpPing}); err != nil {
		t.Fatal(err)
	}

	var heap0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap0)

	conn, str := rawStream(t, ca, m)
	str.SetDeadline(time.Time{})
	const requests = 5000
	written := make(chan int, 1)
	go func() { // writes until the member stops reading or cuts us off
		n := 0
		for i := range requests {
			if _, err := str.Write(appendRequest(nil, uint64(i+1), 0, &Request{Op: OpGet, Key: []byte("big")})); err != nil {
				break
			}
			n++
		}
		written <- n
	}()

	// Meanwhile a well-behaved member is served as usual, big values too.
	var peakHeap uint64
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; conn.Context().Err() == nil; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("caller not cut off after 20s; %d answer bytes waiting", m.queued.Load())
		}
		key := []byte("small")
		if i%2 == 0 {
			key = []byte("big")
		}
		r, err := good.Call(ctxTimeout(t, 5*time.Second), m.Addr(), &Request{Op: OpGet, Key: key})
		if err != nil || (r.Status != StatusNotFound && !bytes.Equal(r.Value, big)) {
			t.Fatalf("well-behaved member during the attack: %v %+v", err, r)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapAlloc)
		time.Sleep(5 * time.Millisecond)
	}
	var appErr *quic.ApplicationError
	if cause := context.Cause(conn.Context()); !errors.As(cause, &appErr) || appErr.ErrorCode != codeSlowReader {
		t.Fatalf("caller's connection ended with %v, want application error %d", cause, codeSlowReader)
	}
	n := <-written
	served := m.store.calls.Load()
	t.Logf("caller wrote %d requests; member served %d (well-behaved member's included); answers waiting peaked at %d bytes; heap %d -> %d MiB",
		n, served, m.queuedPeak.Load(), heap0.HeapAlloc>>20, peakHeap>>20)

	// The member stopped reading: most requests were never served.
	if served > requests/10 {
		t.Errorf("member served %d of %d requests of a caller that never read", served, requests)
	}
	// What waited for the caller stayed within the budget (one request
	// and answer over it at most), and some did wait: the attack happened.
	if p := m.queuedPeak.Load(); p > budget+2*maxAnswerSize || p < MaxValueSize {
		t.Errorf("answers waiting peaked at %d bytes, want some and at most %d", p, budget+2*maxAnswerSize)
	}
	if peakHeap > heap0.HeapAlloc+128<<20 {
		t.Errorf("heap grew from %d to %d MiB during the attack", heap0.HeapAlloc>>20, peakHeap>>20)
	}
	waitFor(t, 5*time.Second, "waiting answers released", func() bool { return m.queued.Load() == 0 })
	if got := counterValue(metrics.slowC); got != 1 {
		t.Errorf("slow_readers_total = %v, want 1", got)
	}
	if got := strings.Count(m.logs.String(), "not reading its answers"); got != 1 {
		t.Errorf("%d log lines about the slow reader, want 1:\n%s", got, m.logs)
	}
	// The well-behaved member still is.
	if _, err := good.Call(ctxTimeout(t, 5*time.Second), m.Addr(), &Request{Op: OpGet, Key: []byte("big")}); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalsAreLoggedSampled: a flood of handshakes with a foreign
// certificate produces a bounded number of log lines that account for
// every refusal, and the metric counts each.
func TestRefusalsAreLoggedSampled(t *testing.T) {
	ca := transporttest.NewCA(t)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(nil)
	reg.MustRegister(metrics)
	// A long handshake timeout: on a loaded machine a handshake that
	// times out is not refused, and would not be counted.
	m := startMember(t, ca, func(c *QUICConfig) { c.Metrics = metrics; c.DialTimeout = 20 * time.Second })
	const interval = time.Second
	m.refusedLog.mu.Lock()
	m.refusedLog.interval = interval
	m.refusedLog.mu.Unlock()
	start := time.Now()
	foreign := foreignTLS(t, ca)
	foreign.NextProtos, foreign.ServerName = []string{ALPN}, "127.0.0.1"
	refuse := func(n int) { // 4 at a time
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				conn, err := quic.DialAddr(ctx, m.Addr(), foreign, &quic.Config{HandshakeIdleTimeout: 20 * time.Second})
				if err == nil {
					// TLS 1.3: the client may finish before the server's
					// verdict; the refusal then closes the connection.
					<-conn.Context().Done()
				}
			}()
		}
		wg.Wait()
	}
	const flood = 40
	refuse(flood)
	waitFor(t, 20*time.Second, "refusals counted", func() bool { return counterValue(metrics.refusedC) == flood })
	// An interval after the last line, one more refusal writes a line
	// that carries the count of the unlogged ones.
	m.refusedLog.mu.Lock()
	last := m.refusedLog.last
	m.refusedLog.mu.Unlock()
	time.Sleep(time.Until(last.Add(interval + 10*time.Millisecond)))
	refuse(1)
	waitFor(t, 5*time.Second, "last refusal counted", func() bool { return counterValue(metrics.refusedC) == flood+1 })
	elapsed := time.Since(start)

	lines := regexp.MustCompile(`(?m)^.*refused member connection.*$`).FindAllString(m.logs.String(), -1)
	accounted := 0
	for _, l := range lines {
		accounted++
		if mm := regexp.MustCompile(`unlogged_since_last=(\d+)`).FindStringSubmatch(l); mm != nil {
			k, _ := strconv.Atoi(mm[1])
			accounted += k
		}
	}
	t.Logf("%d refusals in %v: %d log lines", flood+1, elapsed, len(lines))
	if limit := 2 + int(elapsed/interval); len(lines) < 2 || len(lines) > limit {
		t.Fatalf("%d log lines for %d refusals in %v, want 2..%d:\n%s", len(lines), flood+1, elapsed, limit, strings.Join(lines, "\n"))
	}
	if accounted != flood+1 {
		t.Fatalf("log lines account for %d refusals, want %d:\n%s", accounted, flood+1, strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[0], "certificate signed by unknown authority") {
		t.Fatalf("refusal line lacks the reason: %s", lines[0])
	}
}

func TestSampledLog(t *testing.T) {
	var buf logBuf
	l := newTextLogger(&buf)
	s := sampledLog{interval: time.Hour}
	for i := range 1000 {
		s.log(l, 0, "event", "i", i)
	}
	if got := strings.Count(buf.String(), "event"); got != 1 {
		t.Fatalf("%d lines for 1000 events within the interval, want 1", got)
	}
	s.mu.Lock()
	s.last = time.Now().Add(-2 * time.Hour)
	s.mu.Unlock()
	s.log(l, 0, "event", "i", 1000)
	if !strings.Contains(buf.String(), "unlogged_since_last=999") {
		t.Fatalf("second line does not count the 999 unlogged events:\n%s", buf.String())
	}
}
