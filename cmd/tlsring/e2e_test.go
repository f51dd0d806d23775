// End-to-end tests of the built binary: `tlsring certs`, three `tlsring
// peer` processes forming a ring over real QUIC, TLS servers that keep
// their sessions in it, a member killed with SIGKILL and restarted, a
// member stopped with SIGTERM and started again, and `tlsring demo`.
//
// The TLS servers run in the test process, one per peer process, and use
// that peer's memcached face as their tlsglue.Store (option (b) of the
// issue): the test's stores are memcache.Clients, so every session crosses
// a real process boundary and the sidecar path is what is tested. The
// store keys the servers use are recorded so the test knows, through the
// same ring package the peers use, which member owns each session.

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
	"github.com/tlsring/tlsring/cmd/internal/memcache"
	"github.com/tlsring/tlsring/ring"
	"github.com/tlsring/tlsring/tlsglue"
)

// syncBuffer is a bytes.Buffer safe for a process writing and the test
// reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// peerProc is one `tlsring peer` process and its addresses.
type peerProc struct {
	name      string // -listen, the member's name
	admin     string
	memcached string
	args      []string
	cmd       *exec.Cmd
	logs      *syncBuffer
	exited    chan error // receives Wait's result
}

// freeTCPPort returns a loopback TCP port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// start runs the process; it fails the test when it exits before the test
// ends unless the test expects it (kill, stop).
func (pp *peerProc) start(t *testing.T, bin string) {
	t.Helper()
	pp.logs = &syncBuffer{}
	pp.cmd = exec.Command(bin, pp.args...)
	pp.cmd.Stdout = pp.logs
	pp.cmd.Stderr = pp.logs
	if err := pp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pp.exited = make(chan error, 1)
	cmd, exited := pp.cmd, pp.exited
	go func() { exited <- cmd.Wait() }()
}

// kill ends the process with SIGKILL and waits for it.
func (pp *peerProc) kill() {
	if pp.cmd == nil {
		return
	}
	pp.cmd.Process.Kill()
	<-pp.exited
	pp.cmd = nil
}

// httpClient does not keep connections, so no goroutine outlives a test.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func httpGet(url string) (int, string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond every 20ms until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, detail)
		}
		<-tick.C
	}
}

func (pp *peerProc) waitHealthy(t *testing.T) {
	t.Helper()
	waitFor(t, 20*time.Second, pp.name+" /healthz", func() (bool, string) {
		select {
		case err := <-pp.exited:
			pp.exited <- err
			t.Fatalf("peer %s exited: %v\n%s", pp.name, err, pp.logs)
		default:
		}
		code, body, err := httpGet("http://" + pp.admin + "/healthz")
		return err == nil && code == 200 && body == "ok\n", fmt.Sprint(code, body, err)
	})
}

// metric sums the samples of name whose labels include every label=value
// pair of match, from the Prometheus text exposition at url.
func metric(t *testing.T, url, name string, match ...string) float64 {
	t.Helper()
	code, body, err := httpGet(url)
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v", url, code, err)
	}
	return sumMetric(body, name, match...)
}

func sumMetric(body, name string, match ...string) float64 {
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // a longer name
		}
		labels := ""
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			labels, rest = rest[1:end], rest[end+1:]
		}
		ok := true
		for i := 0; i+1 < len(match); i += 2 {
			if !strings.Contains(labels, match[i]+`="`+match[i+1]+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

// recordingStore is a memcache.Client that records the keys of the
// sessions it stores.
type recordingStore struct {
	*memcache.Client
	mu      sync.Mutex
	keys    []string // memcached keys, as the peer sees them
	lastErr error
}

func (r *recordingStore) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := r.Client.Set(ctx, key, value, ttl)
	r.mu.Lock()
	if err == nil {
		r.keys = append(r.keys, memcache.ClientKey(key))
	} else {
		r.lastErr = fmt.Errorf("after %v: %w", time.Since(start), err)
	}
	r.mu.Unlock()
	return err
}

// takeKeys returns the keys recorded since the last call.
func (r *recordingStore) takeKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys
	r.keys = nil
	return k
}

// webServer is a TLS server of the test whose sessions go to one peer.
type webServer struct {
	peer  int
	store *recordingStore
	glue  *tlsglue.Glue
	srv   *tlsServer
}

// session is a TLS client with its session cache.
type session struct {
	conf *tls.Config
	key  string // memcached key of the session it holds now
}

func newSession(pool *certgen.CA) *session {
	return &session{conf: &tls.Config{
		RootCAs:            pool.Pool(),
		ServerName:         "localhost",
		MinVersion:         tls.VersionTLS13,
		ClientSessionCache: tls.NewLRUClientSessionCache(1),
	}}
}

// visit makes one TLS connection of s to w, waits until the session it
// got is stored, and reports whether the handshake resumed.
func (s *session) visit(t *testing.T, w *webServer) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", w.srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := tls.Client(conn, s.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("handshake with server %d: %v", w.peer, err)
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil { // also reads the TLS 1.3 ticket
		t.Fatalf("read from server %d: %v", w.peer, err)
	}
	resumed := tc.ConnectionState().DidResume
	tc.Close()
	if err := w.glue.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	keys := w.store.takeKeys()
	if len(keys) != 1 {
		w.store.mu.Lock()
		err := w.store.lastErr
		w.store.mu.Unlock()
		t.Fatalf("server %d stored %d sessions for one handshake, want 1 (last store error: %v)", w.peer, len(keys), err)
	}
	s.key = keys[0]
	return resumed
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := tlsringBinary(t)
	dir := t.TempDir()
	const n = 3
	procs := startRing(t, bin, dir, "p", n)
	members := make([]string, n)
	for i, pp := range procs {
		members[i] = pp.name
	}

	// TLS servers in this process, each storing sessions through one
	// peer's memcached face.
	webCA, err := certgen.NewCA("e2e web CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	webCert, err := webCA.Issue(certgen.ECDSA, time.Hour, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	webs := make([]*webServer, n)
	for i, pp := range procs {
		st := &recordingStore{Client: memcache.NewClient("tcp", pp.memcached)}
		// A generous deadline: the test checks where sessions are found,
		// not how fast, on a loaded machine (and under -race).
		g, err := tlsglue.New(st, tlsglue.Options{Deadline: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		conf := webConfig(webCert, tls.VersionTLS13)
		if err := g.Install(conf); err != nil {
			t.Fatal(err)
		}
		srv, err := startTLSServer(conf)
		if err != nil {
			t.Fatal(err)
		}
		webs[i] = &webServer{peer: i, store: st, glue: g, srv: srv}
		t.Cleanup(func() {
			srv.close()
			g.Close()
			st.Close()
		})
	}

	// 1. Cross-server resumption: a session issued by server i resumes on
	// server i+1, which uses another peer process.
	const clients = 30
	sessions := make([]*session, clients)
	for c := range sessions {
		s := newSession(webCA)
		sessions[c] = s
		if s.visit(t, webs[c%n]) {
			t.Fatalf("client %d: first handshake resumed", c)
		}
		if !s.visit(t, webs[(c+1)%n]) {
			t.Fatalf("client %d: session from server %d did not resume on server %d", c, c%n, (c+1)%n)
		}
	}
	for i, pp := range procs {
		url := "http://" + pp.admin + "/metrics"
		if v := metric(t, url, "tlsring_store_entries"); v <= 0 {
			t.Errorf("%s: tlsring_store_entries = %v, want > 0", pp.name, v)
		}
		if v := metric(t, url, "tlsring_peer_served_requests_total", "op", "set", "status", "ok"); v <= 0 {
			t.Errorf("%s: served sets = %v, want > 0", pp.name, v)
		}
		if v := metric(t, url, "tlsring_memcached_commands_total", "command", "get", "result", "hit"); i == 1 && v <= 0 {
			t.Errorf("%s: memcached get hits = %v, want > 0", pp.name, v)
		}
	}

	// 2. kill -9 the member owning the most sessions. Sessions it owns
	// must resume through their replica, asked by the member that holds
	// no copy (so it routes past the dead owner).
	r, err := ring.New(members)
	if err != nil {
		t.Fatal(err)
	}
	owned := make([][]int, n)
	for c, s := range sessions {
		owner := slices.Index(members, r.Owner([]byte(s.key)))
		owned[owner] = append(owned[owner], c)
	}
	victim := 0
	for i := range owned {
		if len(owned[i]) > len(owned[victim]) {
			victim = i
		}
	}
	t.Logf("killing %s, owner of %d of %d sessions", procs[victim].name, len(owned[victim]), clients)
	procs[victim].kill()
	replicaServedBefore := map[int]float64{}
	for i, pp := range procs {
		if i != victim {
			replicaServedBefore[i] = metric(t, "http://"+pp.admin+"/metrics", "tlsring_peer_served_requests_total", "op", "get", "status", "ok")
		}
	}
	routedVia := map[int]bool{}
	for _, c := range owned[victim] {
		s := sessions[c]
		copies := r.Owners([]byte(s.key), 2)
		third := -1
		for i, m := range members {
			if !slices.Contains(copies, m) {
				third = i
			}
		}
		routedVia[third] = true
		if !s.visit(t, webs[third]) {
			t.Fatalf("client %d: session owned by the killed %s did not resume on server %d (its replica is %s)", c, members[victim], third, copies[1])
		}
	}
	for c, s := range sessions {
		// Every other session too, on a live server.
		live := (victim + 1 + c%(n-1)) % n
		if !s.visit(t, webs[live]) {
			t.Fatalf("client %d did not resume on server %d after the kill", c, live)
		}
	}
	// The routing members saw the dead owner and marked it down; the
	// replicas served the gets.
	for i := range routedVia {
		url := "http://" + procs[i].admin + "/metrics"
		waitFor(t, 10*time.Second, procs[i].name+" marking "+members[victim]+" down", func() (bool, string) {
			v := metric(t, url, "tlsring_peer_up", "remote", members[victim])
			return v == 0, fmt.Sprint("tlsring_peer_up = ", v)
		})
	}
	servedAfter := 0.0
	for i, before := range replicaServedBefore {
		servedAfter += metric(t, "http://"+procs[i].admin+"/metrics", "tlsring_peer_served_requests_total", "op", "get", "status", "ok") - before
	}
	if servedAfter < float64(len(owned[victim])) {
		t.Errorf("the live members served %v gets since the kill, want at least %d", servedAfter, len(owned[victim]))
	}

	// 3. Restart it on the same addresses: it serves again, and sessions
	// stored through it resume elsewhere.
	procs[victim].start(t, bin)
	procs[victim].waitHealthy(t)
	other := (victim + 1) % n
	waitFor(t, 15*time.Second, "a session stored through the restarted member to resume on another server", func() (bool, string) {
		s := newSession(webCA)
		if s.visit(t, webs[victim]) {
			t.Fatal("first handshake resumed")
		}
		return s.visit(t, webs[other]), "did not resume"
	})
	// Its peers mark it up again.
	for i, pp := range procs {
		if i == victim {
			continue
		}
		waitFor(t, 10*time.Second, pp.name+" marking the restarted member up", func() (bool, string) {
			body := metricsBody(t, pp.admin)
			up := sumMetric(body, "tlsring_peer_up", "remote", members[victim])
			return up == 1 || !strings.Contains(body, `remote="`+members[victim]+`"`), fmt.Sprint("tlsring_peer_up = ", up)
		})
	}
	if v := metric(t, "http://"+procs[victim].admin+"/metrics", "tlsring_memcached_commands_total", "command", "set", "result", "stored"); v < 1 {
		t.Errorf("restarted member: memcached sets stored = %v, want >= 1", v)
	}

	// 4. SIGTERM: a member exits 0; the sessions it held resume through
	// their other copies meanwhile; started again, it pulls its entries
	// back (state transfer) before it says it is ready.
	leaver := (victim + 2) % n
	if err := procs[leaver].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-procs[leaver].exited:
		if err != nil {
			t.Fatalf("after SIGTERM, %s exited with %v", procs[leaver].name, err)
		}
		procs[leaver].cmd = nil
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit within 20s of SIGTERM", procs[leaver].name)
	}
	logs := procs[leaver].logs.String()
	for c, s := range sessions {
		live := (leaver + 1 + c%(n-1)) % n
		if !s.visit(t, webs[live]) {
			t.Fatalf("client %d did not resume on server %d with %s stopped", c, live, procs[leaver].name)
		}
	}
	procs[leaver].start(t, bin)
	procs[leaver].waitReady(t, 30*time.Second)
	if v := metric(t, "http://"+procs[leaver].admin+"/metrics", "tlsring_peer_state_transfers_total"); v < 1 {
		t.Errorf("restarted %s: state transfers = %v, want 1", procs[leaver].name, v)
	}
	for c, s := range sessions {
		if !s.visit(t, webs[leaver]) {
			t.Fatalf("client %d did not resume on server %d after its member came back", c, leaver)
		}
	}
	if !strings.Contains(logs, "tlsring peer stopped") {
		t.Errorf("no clean stop in the logs of %s", procs[leaver].name)
	}
}

func metricsBody(t *testing.T, admin string) string {
	t.Helper()
	code, body, err := httpGet("http://" + admin + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics of %s: %d %v", admin, code, err)
	}
	return body
}

// TestDemo runs `tlsring demo` small and checks its table.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a cluster")
	}
	bin := tlsringBinary(t)
	// A generous lookup deadline: this checks the demo's workings, not
	// latency, on a loaded machine and perhaps under -race.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "-handshakes", "150", "-clients", "30", "-deadline", "500ms")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	t.Logf("demo output:\n%s", out)
	rate := func(prefix string) float64 {
		for line := range strings.Lines(out) {
			if strings.HasPrefix(line, prefix) {
				m := regexp.MustCompile(`\s(\d+)\s+([\d.]+)%`).FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("no resumption rate in %q", line)
				}
				if m[1] != "150" {
					t.Errorf("%q: %s handshakes, want 150", line, m[1])
				}
				v, _ := strconv.ParseFloat(m[2], 64)
				return v
			}
		}
		t.Fatalf("no row %q in the output", prefix)
		return 0
	}
	if v := rate("(a) tlsring"); v < 95 {
		t.Errorf("tlsring resumed %v%%, want >= 95%%", v)
	}
	if v := rate("(b) each server alone"); v > 70 {
		t.Errorf("servers alone resumed %v%% behind a random balancer, want about a third", v)
	}
	if v := rate("    each server alone, sticky"); v < 95 {
		t.Errorf("sticky servers resumed %v%%, want about 100%%", v)
	}
	if v := rate("(c) tlsring, after losing"); v < 80 {
		t.Errorf("after losing a member, tlsring resumed %v%%", v)
	}
	if !strings.Contains(stderr.String(), "(a) tlsring, 3 members: 150 handshakes in") {
		t.Errorf("no progress line in stderr:\n%s", &stderr)
	}
}
