// Tests of the DNS source against a real DNS server (github.com/miekg/dns)
// the test runs on loopback, over UDP and TCP, whose records the test
// changes and which it can make fail, fall silent or stop.

package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prometheus/client_golang/prometheus"
)

// testDNS is an authoritative server for whatever records it is given.
type testDNS struct {
	Addr string // host:port, UDP and TCP

	mu      sync.Mutex
	records map[string][]dns.RR // by name and type: "name. TYPE"
	rcode   int                 // answered instead of records when not 0
	silent  bool                // answers nothing
	queries map[string]int      // by network
	udp     *dns.Server
	tcp     *dns.Server
}

// startDNS runs a server on a loopback port, on UDP and TCP, until the test
// ends.
func startDNS(t *testing.T) *testDNS {
	t.Helper()
	s := &testDNS{records: map[string][]dns.RR{}, queries: map[string]int{}}
	var pc net.PacketConn
	var l net.Listener
	for range 20 { // the same port on UDP and TCP
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no loopback port free on both UDP and TCP")
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
	}
	t.Cleanup(s.stop)
	return s
}

// stop shuts the server down (a resolver that is gone).
func (s *testDNS) stop() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

func (s *testDNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.mu.Lock()
	s.queries[w.LocalAddr().Network()]++
	silent, rcode := s.silent, s.rcode
	var answer []dns.RR
	found := false
	if len(req.Question) == 1 {
		q := req.Question[0]
		answer, found = s.records[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]
		if !found {
			for k := range s.records {
				found = found || strings.HasPrefix(k, strings.ToLower(q.Name)+" ")
			}
		}
	}
	s.mu.Unlock()
	if silent {
		return
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	switch {
	case rcode != 0:
		resp.Rcode = rcode
	case !found:
		resp.Rcode = dns.RcodeNameError
	default:
		resp.Answer = answer
	}
	if w.LocalAddr().Network() == "udp" {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	w.WriteMsg(resp)
}

// set replaces the records of name and type (rrs in zone-file syntax).
func (s *testDNS) set(t *testing.T, name string, qtype uint16, rrs ...string) {
	t.Helper()
	var parsed []dns.RR
	for _, r := range rrs {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, rr)
	}
	s.mu.Lock()
	s.records[strings.ToLower(dns.Fqdn(name))+" "+dns.TypeToString[qtype]] = parsed
	s.mu.Unlock()
}

func (s *testDNS) setFailure(rcode int, silent bool) {
	s.mu.Lock()
	s.rcode, s.silent = rcode, silent
	s.mu.Unlock()
}

func (s *testDNS) queryCount(network string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[network]
}

func srvRecords(name string, members ...string) []string {
	var rrs []string
	for _, m := range members {
		host, port, _ := net.SplitHostPort(m)
		rrs = append(rrs, fmt.Sprintf("%s 5 IN SRV 0 10 %s %s.", name, port, host))
	}
	return rrs
}

func TestDNSResolve(t *testing.T) {
	s := startDNS(t)
	s.set(t, "_quic._udp.ring.test", dns.TypeSRV, srvRecords("_quic._udp.ring.test.", "m1.ring.test:7001", "m0.ring.test:7000", "m0.ring.test:7000")...)
	s.set(t, "ring.test", dns.TypeA, "ring.test. 5 IN A 10.0.0.2", "ring.test. 5 IN A 10.0.0.1")
	s.set(t, "ring.test", dns.TypeAAAA, "ring.test. 5 IN AAAA fd00::1")
	s.set(t, "v4only.test", dns.TypeA, "v4only.test. 5 IN A 10.0.0.9")
	s.set(t, "alias.test", dns.TypeA, "alias.test. 5 IN CNAME ring.test.", "ring.test. 5 IN A 10.0.0.1")
	s.set(t, "alias.test", dns.TypeAAAA)
	s.set(t, "empty.test", dns.TypeSRV)
	s.set(t, "nothere.test", dns.TypeSRV, "nothere.test. 5 IN SRV 0 0 7000 .")
	s.set(t, "port0.test", dns.TypeSRV, "port0.test. 5 IN SRV 0 0 0 m.test.")
	tests := []struct {
		name   string
		want   []string
		reason string
	}{
		{"_quic._udp.ring.test", []string{"m0.ring.test:7000", "m1.ring.test:7001"}, ""},
		{"ring.test:7000", []string{"10.0.0.1:7000", "10.0.0.2:7000", "[fd00::1]:7000"}, ""},
		{"ring.test.:7000", []string{"10.0.0.1:7000", "10.0.0.2:7000", "[fd00::1]:7000"}, ""},
		{"alias.test:7000", []string{"10.0.0.1:7000"}, ""},
		// The name has no AAAA records: NODATA, not an error.
		{"v4only.test:7000", []string{"10.0.0.9:7000"}, ""},
		{"missing.test", nil, "nxdomain"},
		{"empty.test", nil, "empty"},
		{"nothere.test", nil, "empty"},
		{"port0.test", nil, "bad_record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &DNS{Name: tt.name, Server: s.Addr}
			got, err := d.Resolve(context.Background())
			if tt.reason != "" {
				var de *dnsError
				if !errors.As(err, &de) || de.reason != tt.reason {
					t.Fatalf("Resolve = %v, %v; want an error for %s", got, err, tt.reason)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Resolve = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestDNSFailures(t *testing.T) {
	s := startDNS(t)
	s.set(t, "ring.test", dns.TypeSRV, srvRecords("ring.test.", "m0.test:7000")...)
	d := &DNS{Name: "ring.test", Server: s.Addr, Timeout: 300 * time.Millisecond}
	for _, tc := range []struct {
		rcode  int
		silent bool
		reason string
	}{
		{dns.RcodeServerFailure, false, "servfail"},
		{dns.RcodeRefused, false, "refused"},
		{0, true, "timeout"},
	} {
		s.setFailure(tc.rcode, tc.silent)
		_, err := d.Resolve(context.Background())
		var de *dnsError
		if !errors.As(err, &de) || de.reason != tc.reason {
			t.Errorf("rcode %d silent %v: Resolve error %v, want one for %s", tc.rcode, tc.silent, err, tc.reason)
		}
	}
}

// TestDNSTruncated: an answer too large for UDP is asked again over TCP
// and read whole.
func TestDNSTruncated(t *testing.T) {
	s := startDNS(t)
	var members []string
	for i := range 300 {
		members = append(members, fmt.Sprintf("tlsring-%d.tlsring.default.svc.cluster.local:7000", i))
	}
	s.set(t, "_quic._udp.tlsring.default.svc.cluster.local", dns.TypeSRV, srvRecords("_quic._udp.tlsring.default.svc.cluster.local.", members...)...)
	d := &DNS{Name: "_quic._udp.tlsring.default.svc.cluster.local", Server: s.Addr}
	got, err := d.Resolve(context.Background())
	if err != nil || !slices.Equal(got, Normalize(members)) {
		t.Fatalf("Resolve = %d members, %v; want %d", len(got), err, len(members))
	}
	if s.queryCount("tcp") == 0 {
		t.Fatal("no query over TCP: the answer was not truncated, the test proves nothing")
	}
}

func TestDNSCheck(t *testing.T) {
	for _, d := range []*DNS{
		{Name: "", Server: "127.0.0.1:53"},
		{Name: "ring.test:0", Server: "127.0.0.1:53"},
		{Name: "ring.test:x", Server: "127.0.0.1:53"},
		{Name: "[::1]", Server: "127.0.0.1:53"},
		{Name: "ring.test", Server: "127.0.0.1"},
	} {
		if err := d.Check(); err == nil {
			t.Errorf("DNS{Name: %q, Server: %q}.Check() = nil, want an error", d.Name, d.Server)
		}
	}
}

// TestDNSFollow runs the DNS source under Follow: members added to the
// records join the ring at the next poll, members removed leave it after
// the grace period, and a server that fails, falls silent or goes away
// leaves the ring as it was.
func TestDNSFollow(t *testing.T) {
	s := startDNS(t)
	const name = "_quic._udp.ring.test"
	set := func(members ...string) { s.set(t, name, dns.TypeSRV, srvRecords(name+".", members...)...) }
	set("a:1", "b:1")
	m := NewMetrics(prometheus.Labels{"member": "a:1"})
	const interval, grace = 50 * time.Millisecond, 500 * time.Millisecond
	src := &DNS{Name: name, Server: s.Addr, Interval: interval, Timeout: 200 * time.Millisecond, Metrics: m}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, src, rec, Config{Self: "a:1", Members: []string{"a:1", "b:1"}, Source: "dns", Grace: grace, Liveness: rec, Metrics: m})
	}()
	defer func() {
		cancel()
		<-done
	}()
	ringIs := func(want ...string) func() (bool, string) {
		return func() (bool, string) {
			rings, ev := rec.state()
			return len(rings) > 0 && slices.Equal(rings[len(rings)-1], want), fmt.Sprint(rings, ev)
		}
	}
	set("a:1", "b:1", "c:1", "d:1")
	waitUntil(t, 10*time.Second, "c and d to join", ringIs("a:1", "b:1", "c:1", "d:1"))
	removed := time.Now()
	set("a:1", "c:1", "d:1")
	waitUntil(t, 10*time.Second, "b to leave", ringIs("a:1", "c:1", "d:1"))
	if d := time.Since(removed); d < grace {
		t.Fatalf("b left %v after it was removed from DNS, within the grace period of %v", d, grace)
	}
	if _, ev := rec.state(); !slices.Contains(ev, "down b:1") {
		t.Fatalf("b was not reported down during its grace period: %v", ev)
	}

	// Failures: the ring stays as it is, however long they last.
	nRings := len(must(rec.state()))
	for _, f := range []struct {
		what   string
		rcode  int
		silent bool
		reason string
	}{
		{"SERVFAIL", dns.RcodeServerFailure, false, "servfail"},
		{"silence", 0, true, "timeout"},
		{"NXDOMAIN", dns.RcodeNameError, false, "nxdomain"},
	} {
		before := testutil.ToFloat64(m.sourceErrors.WithLabelValues("dns", f.reason))
		s.setFailure(f.rcode, f.silent)
		waitUntil(t, 10*time.Second, f.what+" polled 3 times", func() (bool, string) {
			n := testutil.ToFloat64(m.sourceErrors.WithLabelValues("dns", f.reason))
			return n >= before+3, fmt.Sprint(n)
		})
		if rings, ev := rec.state(); len(rings) != nRings {
			t.Fatalf("the ring changed during %s: %v %v", f.what, rings, ev)
		}
	}
	// An empty answer is refused too.
	s.setFailure(0, false)
	set()
	waitUntil(t, 10*time.Second, "empty answers counted", func() (bool, string) {
		n := testutil.ToFloat64(m.sourceErrors.WithLabelValues("dns", "empty"))
		return n >= 3, fmt.Sprint(n)
	})
	// The server goes away: still the same ring, past the grace period.
	s.stop()
	time.Sleep(2 * grace) // the scenario: a resolver gone for a while
	if rings, ev := rec.state(); len(rings) != nRings || !slices.Equal(rings[len(rings)-1], []string{"a:1", "c:1", "d:1"}) {
		t.Fatalf("the ring changed while the resolver was gone: %v %v", rings, ev)
	}
}
