// gossip_test.go: `tlsring peer -membership gossip` with real processes on
// loopback: a ring that finds itself by gossip grows from 10 members to 15
// and shrinks to 8 while sessions are written and read, keeping at least
// 99% of the sessions stored before each change; a member killed with -9
// is declared dead and its ranges move after the grace period; a process
// without a cluster certificate cannot join. Gossip runs fast here (probe
// interval gossipProbe) and the grace period is short (gossipGrace), so the
// test takes about a minute or two. Its members run without -race even
// when the tests have it: fifteen race-instrumented processes starve on
// two shared cores (handshakes and /metrics time out), and the gossip and
// member code is race-tested in its packages (peer/gossip, peer).

package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/memcache"
	"github.com/tlsring/tlsring/peer/membership"
)

const (
	gossipProbe = 250 * time.Millisecond
	gossipGrace = 2 * time.Second
)

var plainBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// plainBinary is the tlsring binary built without -race (tlsringBinary
// when the tests run without it).
func plainBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return tlsringBinary(t)
	}
	plainBuild.once.Do(func() {
		plainBuild.path = filepath.Join(binDir, "tlsring-norace")
		goBin, err := exec.LookPath("go")
		if err != nil {
			plainBuild.err = fmt.Errorf("the go command is not in PATH: %w", err)
			return
		}
		plainBuild.out, plainBuild.err = exec.Command(goBin, "build", "-o", plainBuild.path, ".").CombinedOutput()
	})
	if plainBuild.err != nil {
		t.Fatalf("go build: %v\n%s", plainBuild.err, plainBuild.out)
	}
	return plainBuild.path
}

// storeRetrying stores n sessions like storeSessions, but gives a write
// that fails two more tries (a member of an overloaded test machine can
// miss a deadline) and returns the keys stored; it fails the test if
// more than 1% could not be stored at all.
func storeRetrying(t *testing.T, procs []*peerProc, prefix string, n int) []string {
	t.Helper()
	var mu sync.Mutex
	var stored []string
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	forEachKey(t, procs, keys, func(c *memcache.Client, k string) error {
		v := make([]byte, 200)
		rand.Read(v)
		var err error
		for range 3 {
			if err = c.Set(ctxFor(t, 15*time.Second), []byte(k), v, time.Hour); err == nil {
				mu.Lock()
				stored = append(stored, k)
				mu.Unlock()
				return nil
			}
		}
		t.Logf("%s not stored: %v", k, err)
		return nil
	})
	if len(stored)*100 < n*99 {
		t.Fatalf("%d of %d sessions stored, want at least 99%%", len(stored), n)
	}
	return stored
}

// gossipRing is the members of a test ring, by index; nil once stopped.
type gossipRing struct {
	t      *testing.T
	bin    string
	dir    string
	seeds  []string // gossip addresses of the first three members
	procs  []*peerProc
	gossip []string // each member's gossip address
}

// start starts member i of the ring with certificates from the CA in dir
// (another dir: another CA), joining through the seeds.
func (r *gossipRing) start(i int, dir string) *peerProc {
	t := r.t
	name := fmt.Sprintf("g%d", i)
	if out, err := exec.Command(r.bin, "certs", "-dir", dir, "-name", name, "-hosts", "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("tlsring certs: %v\n%s", err, out)
	}
	port, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	gport, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	pp := &peerProc{name: addr(port), admin: addr(freeTCPPort(t)), memcached: addr(freeTCPPort(t))}
	pp.args = []string{"peer",
		"-listen", pp.name,
		"-membership", "gossip",
		"-gossip-listen", addr(gport),
		"-gossip-seeds", strings.Join(r.seeds, ","),
		"-gossip-probe-interval", gossipProbe.String(),
		"-membership-grace", gossipGrace.String(),
		"-cert", filepath.Join(dir, name+".pem"),
		"-key", filepath.Join(dir, name+"-key.pem"),
		"-ca", filepath.Join(dir, "ca.pem"),
		"-admin", pp.admin,
		"-memcached", pp.memcached,
		"-log-level", "debug",
	}
	pp.args = append(pp.args, correctFlags...)
	pp.start(t, r.bin)
	t.Cleanup(func() {
		pp.kill()
		if t.Failed() {
			t.Logf("logs of %s:\n%s", pp.name, pp.logs)
		}
	})
	if dir == r.dir {
		for len(r.procs) <= i {
			r.procs = append(r.procs, nil)
			r.gossip = append(r.gossip, "")
		}
		r.procs[i], r.gossip[i] = pp, addr(gport)
		if len(r.seeds) < 3 {
			r.seeds = append(r.seeds, addr(gport))
		}
	}
	return pp
}

// live returns the members running.
func (r *gossipRing) live() []*peerProc {
	var out []*peerProc
	for _, pp := range r.procs {
		if pp != nil && pp.cmd != nil {
			out = append(out, pp)
		}
	}
	return out
}

// waitRing waits until every live member's ring has exactly the live
// members' count, and every one is ready.
func (r *gossipRing) waitRing(timeout time.Duration) {
	t := r.t
	t.Helper()
	live := r.live()
	waitFor(t, timeout, fmt.Sprintf("every member's ring to have the %d live members", len(live)), func() (bool, string) {
		var b strings.Builder
		ok := true
		for _, pp := range live {
			code, body, err := httpGet("http://" + pp.admin + "/metrics")
			if err != nil || code != 200 { // not serving yet: waiting for gossip
				fmt.Fprintf(&b, "%s:- ", pp.name)
				ok = false
				continue
			}
			n := int(sumMetric(body, "tlsring_peer_members"))
			fmt.Fprintf(&b, "%s:%d ", pp.name, n)
			ok = ok && n == len(live)
		}
		return ok, b.String()
	})
	for _, pp := range live {
		pp.waitReady(t, timeout)
	}
}

// rebalances returns each live member's tlsring_peer_rebalances_total.
func (r *gossipRing) rebalances() map[*peerProc]float64 {
	out := map[*peerProc]float64{}
	for _, pp := range r.live() {
		out[pp] = metric(r.t, "http://"+pp.admin+"/metrics", "tlsring_peer_rebalances_total")
	}
	return out
}

// waitRebalanced waits until every member of before still running
// finished a rebalance more than it had then (members that started since
// started with the new ring: they have nothing to rebalance).
func (r *gossipRing) waitRebalanced(before map[*peerProc]float64, timeout time.Duration) {
	r.t.Helper()
	waitFor(r.t, timeout, "every member to finish rebalancing", func() (bool, string) {
		for pp := range before {
			if pp.cmd == nil {
				continue
			}
			if n := metric(r.t, "http://"+pp.admin+"/metrics", "tlsring_peer_rebalances_total"); n <= before[pp] {
				return false, pp.name + " has not rebalanced"
			}
		}
		return true, ""
	})
}

// load writes sessions through the faces of the members in faces and
// reads each back at once, until stopped: the traffic the ring changes
// happen under.
type load struct {
	stop                   chan struct{}
	done                   sync.WaitGroup
	written, found, failed atomic.Int64
}

func startLoad(t *testing.T, faces []*peerProc) *load {
	l := &load{stop: make(chan struct{})}
	for w := range 4 {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			c := memcache.NewClient("tcp", faces[w%len(faces)].memcached)
			defer c.Close()
			r := memcache.NewClient("tcp", faces[(w+1)%len(faces)].memcached)
			defer r.Close()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k := []byte(fmt.Sprintf("load-%d-%06d", w, i))
				v := make([]byte, 200)
				rand.Read(v)
				if c.Set(ctxFor(t, 15*time.Second), k, v, time.Hour) != nil {
					l.failed.Add(1)
					continue
				}
				l.written.Add(1)
				if _, err := r.Get(ctxFor(t, 5*time.Second), k); err == nil {
					l.found.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) finish(t *testing.T) {
	close(l.stop)
	l.done.Wait()
	t.Logf("load during the changes: %d sessions written, %d read back at once, %d writes failed", l.written.Load(), l.found.Load(), l.failed.Load())
}

// checkFound fails the test unless at least 99% of keys are found.
func checkFound(t *testing.T, faces []*peerProc, keys []string, after string) {
	t.Helper()
	found := countFound(t, faces, keys)
	t.Logf("after %s: %d of %d sessions found (%.2f%%)", after, found, len(keys), 100*float64(found)/float64(len(keys)))
	if found*100 < len(keys)*99 {
		t.Fatalf("after %s, %d of %d sessions found, want at least 99%%", after, found, len(keys))
	}
}

func TestGossipGrowShrink(t *testing.T) {
	bin := plainBinary(t)
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	r := &gossipRing{t: t, bin: bin, dir: t.TempDir()}
	for i := range 10 {
		r.start(i, r.dir)
	}
	r.waitRing(60 * time.Second)
	phase("10 members formed a ring by gossip")
	faces := r.procs[:8] // never stopped
	before := storeRetrying(t, faces, "ten", 2000)
	checkFound(t, faces, before, "the ring formed by gossip (10 members)")

	// Grow to 15 under load.
	l := startLoad(t, faces)
	reb := r.rebalances()
	for i := 10; i < 15; i++ {
		r.start(i, r.dir)
	}
	r.waitRing(60 * time.Second)
	r.waitRebalanced(reb, 30*time.Second)
	phase("grown to 15")
	l.finish(t)
	checkFound(t, faces, before, "growing from 10 to 15 members")

	// Shrink to 8 under load: members leave one at a time (SIGTERM), each
	// after the ring re-copied the entries of the one before.
	before = append(before, storeRetrying(t, faces, "fifteen", 2000)...)
	l = startLoad(t, faces)
	for i := 14; i >= 8; i-- {
		reb := r.rebalances()
		r.procs[i].stop(t, syscall.SIGTERM)
		r.waitRing(30 * time.Second)
		r.waitRebalanced(reb, 30*time.Second)
	}
	phase("shrunk to 8")
	l.finish(t)
	checkFound(t, faces, before, "shrinking from 15 to 8 members")

	// A process without a cluster certificate cannot join: the members
	// refuse its gossip, and their rings keep 8 members.
	// (The outsider does not trust the cluster CA either, so it is the one
	// that breaks off each handshake: count its failed attempts.)
	outsider := r.start(99, t.TempDir())
	waitFor(t, 30*time.Second, "the outsider to fail joining three times", func() (bool, string) {
		n := strings.Count(outsider.logs.String(), "gossip: no seed answered")
		return n >= 3, fmt.Sprint(n, " failed attempts")
	})
	for _, pp := range r.live() {
		if n := metric(t, "http://"+pp.admin+"/metrics", "tlsring_peer_members"); n != 8 {
			t.Fatalf("%s's ring has %v members after an outsider tried to join, want 8", pp.name, n)
		}
	}
	outsider.waitHealthy(t)
	if n := metric(t, "http://"+outsider.admin+"/metrics", "tlsring_peer_members"); n != 1 {
		t.Fatalf("the outsider's ring has %v members, want itself alone", n)
	}
	outsider.kill()
	phase("outsider refused")

	// A member killed with -9 is declared dead by gossip, and its ranges
	// move once the grace period has passed.
	victim := r.procs[7]
	faces = r.procs[:7]
	reb = r.rebalances()
	killed := time.Now()
	victim.kill()
	r.waitRing(30 * time.Second)
	moved := time.Since(killed)
	r.waitRebalanced(reb, 30*time.Second)
	t.Logf("member killed with -9: out of every ring after %v (grace %v, probe interval %v)", moved.Round(time.Millisecond), gossipGrace, gossipProbe)
	if moved < gossipGrace {
		t.Errorf("the killed member's ranges moved after %v, before the grace period of %v", moved, gossipGrace)
	}
	checkFound(t, faces, before, "a member was killed with -9")
	suspicions := 0.0
	for _, pp := range faces {
		if n := metric(t, "http://"+pp.admin+"/metrics", "tlsring_membership_gossip_leaves_total", "reason", "dead"); n < 1 {
			t.Errorf("%s counted no member declared dead", pp.name)
		}
		suspicions += metric(t, "http://"+pp.admin+"/metrics", "tlsring_membership_suspicions_total")
	}
	if suspicions < 1 {
		t.Error("no member counted a suspicion of the member killed")
	}
}

// TestGossipFlags: the flags of -membership gossip, parsed.
func TestGossipFlags(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runCmd("certs", "-dir", dir, "-name", "a", "-hosts", "127.0.0.1"); code != 0 {
		t.Fatal(errs)
	}
	parse := func(args ...string) (*peerConfig, error) {
		var out, errs bytes.Buffer
		base := []string{"-listen", "127.0.0.1:7001", "-cert", filepath.Join(dir, "a.pem"), "-key", filepath.Join(dir, "a-key.pem"), "-ca", filepath.Join(dir, "ca.pem")}
		return parsePeerFlags(append(base, args...), func(string) (string, bool) { return "", false }, &out, &errs)
	}
	cfg, err := parse("-membership", "gossip")
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.membership.gossip
	if g == nil || g.Listen != "127.0.0.1:7002" || g.Member != "127.0.0.1:7001" || len(g.Seeds) != 0 || g.ProbeInterval != time.Second ||
		cfg.membership.grace != membership.DefaultGrace || !slices.Equal(cfg.members, []string{"127.0.0.1:7001"}) {
		t.Fatalf("-membership gossip: %+v, grace %v, members %v", g, cfg.membership.grace, cfg.members)
	}
	cfg, err = parse("-membership", "gossip", "-gossip-listen", "127.0.0.1:9000", "-gossip-seeds", "10.0.0.1:9000,10.0.0.2:9000", "-gossip-probe-interval", "200ms", "-membership-grace", "5s")
	if err != nil {
		t.Fatal(err)
	}
	if g := cfg.membership.gossip; g.Listen != "127.0.0.1:9000" || !slices.Equal(g.Seeds, []string{"10.0.0.1:9000", "10.0.0.2:9000"}) || g.ProbeInterval != 200*time.Millisecond || cfg.membership.grace != 5*time.Second {
		t.Fatalf("gossip flags: %+v, grace %v", g, cfg.membership.grace)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-gossip-seeds", "10.0.0.1:9000"}, "-gossip-seeds needs -membership gossip"},
		{[]string{"-membership", "gossip", "-members", "127.0.0.1:7001"}, "drop -members"},
		{[]string{"-membership", "gossip", "-gossip-listen", "0.0.0.0:9000"}, "not a wildcard"},
		{[]string{"-membership", "gossip", "-gossip-listen", "localhost:9000"}, "not a name"},
		{[]string{"-membership", "gossip", "-gossip-seeds", "10.0.0.1"}, "-gossip-seeds \"10.0.0.1\""},
		{[]string{"-membership", "gossip", "-gossip-probe-interval", "0s"}, "want a positive duration"},
	} {
		_, err := parse(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
