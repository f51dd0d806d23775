// dns_test.go: `tlsring peer -membership dns` with real processes: a DNS
// server run by the test on loopback lists the members (A records of
// 127.0.0.11, .12, ... with one port); the ring grows and shrinks with the
// answer while sessions stay found, and keeps its members while the server
// fails.

package main

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsZone answers A queries for one name from a list the test changes,
// over UDP; with failing set it answers SERVFAIL.
type dnsZone struct {
	name    string // fully qualified
	mu      sync.Mutex
	ips     []string
	failing bool
}

func (z *dnsZone) set(ips []string, failing bool) {
	z.mu.Lock()
	z.ips, z.failing = slices.Clone(ips), failing
	z.mu.Unlock()
}

func (z *dnsZone) serve(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	ips, failing := slices.Clone(z.ips), z.failing
	z.mu.Unlock()
	resp := new(dns.Msg)
	resp.SetReply(req)
	switch {
	case failing:
		resp.Rcode = dns.RcodeServerFailure
	case len(req.Question) != 1 || !strings.EqualFold(req.Question[0].Name, z.name):
		resp.Rcode = dns.RcodeNameError
	case req.Question[0].Qtype == dns.TypeA:
		for _, ip := range ips {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   net.ParseIP(ip),
			})
		}
	}
	w.WriteMsg(resp)
}

// startZone serves z on a loopback UDP port until the test ends.
func startZone(t *testing.T, z *dnsZone) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// freePortOn returns a UDP port free a moment ago on every one of ips.
func freePortOn(t *testing.T, ips []string) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		conns := []net.PacketConn{c}
		ok := true
		for _, ip := range ips[1:] {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no UDP port free on every loopback address")
	return 0
}

// TestDNSMembership: three members found through DNS hold 3,000 sessions;
// the answer grows to five (and the two new members start): every member
// follows, every session is found (at least 99%) and every member holds
// its share. A member missing from one answer (a flap), and a resolver
// failing for longer than the grace period, move nothing. Then one member
// is stopped and dropped from the answer: after the grace period the ring
// is four, with every session found again.
func TestDNSMembership(t *testing.T) {
	bin := tlsringBinary(t)
	dir := t.TempDir()
	var ips []string
	for i := range 5 {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", 11+i))
	}
	port := freePortOn(t, ips)
	zone := &dnsZone{name: "ring.tlsring.test."}
	zone.set(ips[:3], false)
	server := startZone(t, zone)
	const grace = 5 * time.Second
	procs := make([]*peerProc, len(ips))
	for i, ip := range ips {
		name := fmt.Sprintf("n%d", i)
		if out, err := runBin(bin, "certs", "-dir", dir, "-name", name, "-hosts", ip); err != nil {
			t.Fatalf("tlsring certs: %v\n%s", err, out)
		}
		pp := &peerProc{name: net.JoinHostPort(ip, strconv.Itoa(port)), admin: addr(freeTCPPort(t)), memcached: addr(freeTCPPort(t))}
		pp.args = append([]string{"peer", "-listen", pp.name,
			"-membership", "dns", "-dns-name", "ring.tlsring.test:" + strconv.Itoa(port), "-dns-server", server,
			"-dns-interval", "200ms", "-membership-grace", grace.String(),
			"-cert", filepath.Join(dir, name+".pem"), "-key", filepath.Join(dir, name+"-key.pem"), "-ca", filepath.Join(dir, "ca.pem"),
			"-admin", pp.admin, "-memcached", pp.memcached, "-log-level", "debug"}, correctFlags...)
		procs[i] = pp
	}
	t.Cleanup(func() {
		for _, pp := range procs {
			pp.kill()
			if t.Failed() {
				t.Logf("logs of %s:\n%s", pp.name, pp.logs)
			}
		}
	})
	ringSize := func(procs []*peerProc, n int) {
		t.Helper()
		waitFor(t, 30*time.Second, fmt.Sprintf("every member to have a ring of %d", n), func() (bool, string) {
			var b strings.Builder
			ok := true
			for _, pp := range procs {
				got := int(metric(t, "http://"+pp.admin+"/metrics", "tlsring_peer_members"))
				fmt.Fprintf(&b, "%s %d ", pp.name, got)
				ok = ok && got == n
			}
			return ok, b.String()
		})
	}
	for _, pp := range procs[:3] {
		pp.start(t, bin)
	}
	for _, pp := range procs[:3] {
		pp.waitReady(t, 30*time.Second)
	}
	ringSize(procs[:3], 3)
	keys := storeSessions(t, procs[:3], "dns", 3000)
	checkCopies(t, procs[:3], keys, 30*time.Second)

	// Grow: the answer lists five, the two new members start.
	zone.set(ips, false)
	for _, pp := range procs[3:] {
		pp.start(t, bin)
	}
	for _, pp := range procs[3:] {
		pp.waitHealthy(t)
	}
	ringSize(procs, 5)
	for _, pp := range procs {
		pp.waitReady(t, 30*time.Second)
	}
	checkCopies(t, procs, keys, 40*time.Second)
	found := countFound(t, procs, keys)
	t.Logf("after the ring grew from 3 to 5 through DNS: %d of %d sessions found", found, len(keys))
	if found*100 < len(keys)*99 {
		t.Fatalf("%d of %d sessions found after the ring grew, want at least 99%%", found, len(keys))
	}

	sumOver := func(name string, match ...string) (total float64) {
		for _, pp := range procs {
			total += metric(t, "http://"+pp.admin+"/metrics", name, match...)
		}
		return total
	}
	rebalances := sumOver("tlsring_peer_rebalances_total")

	// A flap: a member missing from one answer and back in the next is
	// reported down, then up, and moves nothing.
	zone.set(slices.Delete(slices.Clone(ips), 2, 3), false)
	waitFor(t, 20*time.Second, "a member to see the flap", func() (bool, string) {
		n := sumOver("tlsring_membership_members", "state", "leaving")
		return n > 0, fmt.Sprint("leaving ", n)
	})
	zone.set(ips, false)
	waitFor(t, 20*time.Second, "the flap to be damped", func() (bool, string) {
		leaving, damped := sumOver("tlsring_membership_members", "state", "leaving"), sumOver("tlsring_membership_flaps_damped_total")
		return leaving == 0 && damped > 0, fmt.Sprint("leaving ", leaving, " damped ", damped)
	})

	// The resolver fails for longer than the grace period: nothing moves.
	zone.set(ips, true)
	waitFor(t, 20*time.Second, "every member to count failed DNS polls", func() (bool, string) {
		var b strings.Builder
		ok := true
		for _, pp := range procs {
			n := metric(t, "http://"+pp.admin+"/metrics", "tlsring_membership_source_errors_total", "source", "dns", "reason", "servfail")
			fmt.Fprintf(&b, "%s %v ", pp.name, n)
			ok = ok && n >= 3
		}
		return ok, b.String()
	})
	time.Sleep(grace + time.Second) // the scenario: a resolver failing past the grace period
	ringSize(procs, 5)
	if n, leaves := sumOver("tlsring_peer_rebalances_total"), sumOver("tlsring_membership_leaves_total"); n != rebalances || leaves != 0 {
		t.Fatalf("a flap and a failing resolver caused %v rebalances and %v leaves, want none", n-rebalances, leaves)
	}

	// Shrink: one member stops and leaves the answer.
	gone, rest := procs[4], procs[:4]
	zone.set(ips[:4], false)
	gone.stop(t, syscall.SIGTERM)
	start := time.Now()
	ringSize(rest, 4)
	if d := time.Since(start); d < grace-time.Second {
		t.Fatalf("the ring shrank %v after the member left DNS, well within the grace period of %v", d, grace)
	}
	checkCopies(t, rest, keys, 40*time.Second)
	found = countFound(t, rest, keys)
	t.Logf("after the ring shrank from 5 to 4 through DNS: %d of %d sessions found", found, len(keys))
	if found*100 < len(keys)*99 {
		t.Fatalf("%d of %d sessions found after the ring shrank, want at least 99%%", found, len(keys))
	}
	for _, pp := range rest {
		if n := metric(t, "http://"+pp.admin+"/metrics", "tlsring_membership_leaves_total"); n != 1 {
			t.Errorf("%s counted %v leaves, want 1", pp.name, n)
		}
	}
}
