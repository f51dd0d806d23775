// Gossip members over real QUIC with mutual TLS on loopback: they find
// each other through a seed, a member closed without a word is suspected,
// reported down and dropped, one that leaves is dropped at once, and a
// party without a cluster certificate (or with one Authorize refuses)
// cannot join.

package gossip

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tlsring/tlsring/transport/transporttest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = testLogger()

// testLogger discards logs unless GOSSIP_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("GOSSIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// liveness records what a member is told.
type liveness struct {
	mu     sync.Mutex
	down   map[string]error
	events []string
}

func newLiveness() *liveness { return &liveness{down: map[string]error{}} }

func (l *liveness) MemberDown(m string, reason error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down[m] = reason
	l.events = append(l.events, "down "+m+": "+reason.Error())
}

func (l *liveness) MemberUp(m string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.down, m)
	l.events = append(l.events, "up "+m)
}

func (l *liveness) reason(m string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down[m]
}

func (l *liveness) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, "; ")
}

// member is one gossip member of a test.
type member struct {
	g    *Gossip
	live *liveness
	reg  *prometheus.Registry
}

// start starts a gossip member whose data address is data, joining
// through seeds.
func start(t *testing.T, ca *transporttest.CA, data string, seeds []string, opt func(*Config)) *member {
	t.Helper()
	m := &member{live: newLiveness(), reg: prometheus.NewRegistry()}
	cfg := Config{
		Listen:        "127.0.0.1:0",
		Member:        data,
		Seeds:         seeds,
		TLS:           ca.MemberTLS(t, "127.0.0.1"),
		Liveness:      m.live,
		ProbeInterval: 200 * time.Millisecond,
		JoinRetry:     100 * time.Millisecond,
		Logger:        quiet,
		Registerer:    m.reg,
	}
	if opt != nil {
		opt(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	m.g = g
	return m
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMembers waits until every one of ms lists exactly want.
func waitMembers(t *testing.T, ms []*member, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	waitFor(t, 20*time.Second, fmt.Sprintf("members %v", want), func() (bool, string) {
		for _, m := range ms {
			if got := m.g.Members(); !slices.Equal(got, want) {
				return false, fmt.Sprintf("%s lists %v", m.g.cfg.Member, got)
			}
		}
		return true, ""
	})
}

func dataAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", 20000+i) }

func TestJoinFailLeave(t *testing.T) {
	ca := transporttest.NewCA(t)
	first := start(t, ca, dataAddr(0), nil, nil)
	ms := []*member{first}
	var want []string
	want = append(want, dataAddr(0))
	for i := 1; i < 5; i++ {
		ms = append(ms, start(t, ca, dataAddr(i), []string{first.g.Addr()}, nil))
		want = append(want, dataAddr(i))
	}
	waitMembers(t, ms, want)

	// Run reports the list, then its changes.
	ctx, cancel := context.WithCancel(context.Background())
	lists := make(chan []string, 16)
	runDone := make(chan error, 1)
	go func() { runDone <- ms[1].g.Run(ctx, func(l []string) { lists <- l }) }()
	defer func() {
		cancel()
		if err := <-runDone; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	}()
	if got := <-lists; !slices.Equal(got, want) {
		t.Fatalf("Run's first list %v, want %v", got, want)
	}

	// A member closed without a word: suspected, reported down, then
	// declared dead and dropped from the list.
	killed := ms[4]
	began := time.Now()
	killed.g.Close()
	waitFor(t, 10*time.Second, "the others to report the closed member down", func() (bool, string) {
		for _, m := range ms[:4] {
			if m.live.reason(dataAddr(4)) == nil {
				return false, m.g.cfg.Member + ": " + m.live.String()
			}
		}
		return true, ""
	})
	waitMembers(t, ms[:4], want[:4])
	t.Logf("closed member dropped after %v", time.Since(began).Round(time.Millisecond))
	// Whoever probed it first suspected it before it was declared dead
	// (memberlist has no event for that: logWriter reads its log line).
	suspected := false
	for _, m := range ms[:4] {
		suspected = suspected || strings.Contains(m.live.String(), "down "+dataAddr(4)+": "+ErrSuspect.Error())
	}
	if !suspected {
		t.Error("no member reported the closed member suspect before it was declared dead")
	}
	for _, m := range ms[:4] {
		if err := m.live.reason(dataAddr(4)); !errors.Is(err, ErrDead) {
			t.Errorf("%s: closed member down for %v, want %v", m.g.cfg.Member, err, ErrDead)
		}
		if got := testutil.ToFloat64(m.g.metrics.leaves.WithLabelValues("dead")); got < 1 {
			t.Errorf("%s: dead leaves %v, want 1 or more", m.g.cfg.Member, got)
		}
	}
	waitFor(t, 5*time.Second, "Run to report the smaller list", func() (bool, string) {
		for {
			select {
			case l := <-lists:
				if slices.Equal(l, want[:4]) {
					return true, ""
				}
			default:
				return false, ""
			}
		}
	})

	// A member that leaves is dropped at once and reported down; as having
	// left where the news that it was leaving came first (best effort),
	// which is the case on one member at least.
	lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer lcancel()
	if err := ms[3].g.Leave(lctx); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, ms[:3], want[:3])
	left := 0
	for _, m := range ms[:3] {
		err := m.live.reason(dataAddr(3))
		if !errors.Is(err, ErrLeft) && !errors.Is(err, ErrDead) {
			t.Errorf("%s: member that left down for %v, want %v", m.g.cfg.Member, err, ErrLeft)
		}
		if errors.Is(err, ErrLeft) {
			left++
		}
	}
	if left == 0 {
		t.Error("no member counted the member that left as having left")
	}

	// It comes back (same data address, a new gossip port): up again.
	back := start(t, ca, dataAddr(3), []string{first.g.Addr()}, nil)
	waitMembers(t, append(ms[:3:3], back), want[:4])
	waitFor(t, 5*time.Second, "the returned member reported up", func() (bool, string) {
		for _, m := range ms[:3] {
			if m.live.reason(dataAddr(3)) != nil {
				return false, m.live.String()
			}
		}
		return true, ""
	})
}

// TestOutsiderCannotJoin: a member with a certificate from another CA, and
// one whose certificate Authorize refuses, never join, and the cluster
// counts the refusals.
func TestOutsiderCannotJoin(t *testing.T) {
	ca := transporttest.NewCA(t)
	var denied atomic.Pointer[x509.Certificate]
	deny := func(leaf *x509.Certificate) error {
		if d := denied.Load(); d != nil && leaf.Equal(d) {
			return errors.New("retired")
		}
		return nil
	}
	first := start(t, ca, dataAddr(0), nil, func(c *Config) { c.Authorize = deny })
	second := start(t, ca, dataAddr(1), []string{first.g.Addr()}, func(c *Config) { c.Authorize = deny })
	ms := []*member{first, second}
	waitMembers(t, ms, []string{dataAddr(0), dataAddr(1)})

	foreign := transporttest.NewCA(t)
	outsider := start(t, foreign, dataAddr(9), []string{first.g.Addr(), second.g.Addr()}, nil)
	retired := start(t, ca, dataAddr(8), []string{first.g.Addr(), second.g.Addr()}, func(c *Config) {
		leaf, err := x509.ParseCertificate(c.TLS.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		denied.Store(leaf)
	})
	// Both keep trying; wait until each seed refused several attempts.
	waitFor(t, 20*time.Second, "the seeds to refuse the outsiders several times", func() (bool, string) {
		var b strings.Builder
		ok := true
		for _, m := range ms {
			n := testutil.ToFloat64(m.g.metrics.refused)
			fmt.Fprintf(&b, "%s refused %v; ", m.g.cfg.Member, n)
			ok = ok && n >= 6
		}
		return ok, b.String()
	})
	for _, o := range []*member{outsider, retired} {
		select {
		case <-o.g.Joined():
			t.Errorf("%s joined", o.g.cfg.Member)
		default:
		}
		if got := o.g.Members(); !slices.Equal(got, []string{o.g.cfg.Member}) {
			t.Errorf("%s learned members %v", o.g.cfg.Member, got)
		}
	}
	for _, m := range ms {
		if got := m.g.Members(); !slices.Equal(got, []string{dataAddr(0), dataAddr(1)}) {
			t.Errorf("%s lists %v: an outsider got in", m.g.cfg.Member, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	ca := transporttest.NewCA(t)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "127.0.0.1:0", TLS: ca.MemberTLS(t)}, "Config.Member is empty"},
		{Config{Listen: "127.0.0.1:0", Member: "nohost", TLS: ca.MemberTLS(t)}, "Config.Member"},
		{Config{Listen: ":0", Member: dataAddr(1), TLS: ca.MemberTLS(t)}, "not a wildcard"},
		{Config{Listen: "127.0.0.1:0", Member: dataAddr(1)}, "needs this member's certificate"},
		{Config{Listen: "127.0.0.1:0", Member: dataAddr(1), TLS: ca.MemberTLS(t), ProbeInterval: -1}, "must not be negative"},
	} {
		c.cfg.Logger = quiet
		g, err := New(c.cfg)
		if err == nil {
			g.Close()
			t.Errorf("New(%+v) succeeded, want an error with %q", c.cfg, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gossip: ") {
			t.Errorf("New: %v, want a gossip: error with %q", err, c.want)
		}
	}
}
