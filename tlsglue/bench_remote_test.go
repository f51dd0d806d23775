//go:build linux

// bench_remote_test.go: server CPU per handshake when the session's copies
// live on OTHER ring members, reached over real QUIC with mutual TLS.
//
// How it measures: BenchmarkHandshakeRemote's process (the parent) holds
// only the TLS server (benchProcServer) and one peer.Peer member, which the
// tlsring variants use as their Store (default asynchronous writer). A
// child process, this test binary re-executed to run TestBenchChild, holds
// the other two members of the 3-member ring AND the TLS client. So the
// parent's whole-process CPU (getrusage(RUSAGE_SELF), user+sys) grows only
// with the server's work: the handshakes, the lookups it sends over QUIC and
// the session writes, on whatever goroutine or thread they run, plus the
// Go runtime's own (GC, scheduler, idle QUIC traffic: small, and the same
// for every variant). "srv-ns/op" is that growth per handshake.
//
// The parent drives the child over its stdin/stdout, one line each way:
// "prep <addr> <version> <kind>" makes the child obtain a session whose
// placement fits the variant and check that it resumes; "run N P" makes it
// dial N handshakes, P at a time, offering that session (or none) and
// reply with the number resumed, the loop's wall time, its own CPU and the
// Gets its members served. The parent reads its CPU before "run" and after the N-th
// connection is served and Glue.Flush has returned.
//
// Variants:
//
//	full                 no session offered; plain crypto/tls
//	local                crypto/tls's own stateless tickets, resumed locally
//	tlsring-remote       tlsglue; owner and replica both in the child, so
//	                     every lookup is a Get over QUIC
//	tlsring-local-owner  tlsglue; the parent's member owns the session (its
//	                     replica is in the child): a local hit
//	tlsring-remote-unplaced  (TLS 1.3 only) tlsring-remote with random
//	                     placement tokens for the tickets it issues
//	tlsring-remote-noflight  (with -tlsglue.remotepar > 1) tlsring-remote
//	                     with every lookup making its own Get, where
//	                     tlsring-remote shares one among concurrent lookups
//	                     of one handle (flight.go); all the child's
//	                     connections offer the same session
//
// In the tlsring variants every TLS 1.3 handshake also issues a new ticket
// (a TLS 1.2 resumption re-issues the handle it resumed), written to its
// two copies: the parent's member and one in the child (the parent's member
// hands out placement tokens it owns), or, in tlsring-remote-unplaced,
// wherever the ring puts a random token (2/3 of the time one of them is the
// parent's member), as the version before placement tokens did. The session
// each variant resumes is issued with a random token (placement is off while
// the child looks for a session of the placement it wants).
//
// The server goroutine is not locked to a thread (see benchProcServer).
// The tlsring variants use a 1 s Deadline, so that a slow remote Get is
// not a full handshake (which would fail the every-handshake-resumed
// check); "late/op" counts lookups over 3.2 ms, which the default 3 ms
// Deadline would have turned into full handshakes.
//
// Also reported: "wall-ns/op" (the child's loop, divided by N),
// "child-ns/op" (the child's CPU: client and two members), "gets/op"
// (Gets the child's members served; above 1 means hedged reads) and
// "sets/op" (session writes they served: the remote writes per handshake;
// counted when the client's loop ends, so the last few asynchronous writes
// may be missing).
//
//	go test -run '^$' -bench HandshakeRemote -benchtime 2000x -count 5 ./tlsglue
//	go test -run '^$' -bench HandshakeRemote -benchtime 2000x ./tlsglue -args -tlsglue.remotepar=8
//	go test -run '^$' -bench HandshakeRemote/ECDSA/TLS12 -benchtime 1200x ./tlsglue -args -tlsglue.remotepar=6 -tlsglue.burst
//	tlsglue/testdata/bench-cpu.sh    # both benchmarks, medians and ratios

package tlsglue

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/ring"
	"github.com/tlsring/tlsring/transport/transporttest"
)

// benchChildEnv carries the child's benchChildConf as JSON; TestBenchChild
// does nothing without it.
const benchChildEnv = "TLSGLUE_BENCH_CHILD"

// remotePar is how many handshakes the child keeps in flight at once. 1,
// the default, is the worst case for the ring: nothing to amortise a QUIC
// packet, a system call or a wake-up over.
var remotePar = flag.Int("tlsglue.remotepar", 1, "BenchmarkHandshakeRemote: concurrent client handshakes")

// burst makes the child dial in bursts of remotepar connections at once,
// each burst after the last has finished: a browser opening its parallel
// connections to a site, all offering the one session it holds.
var burst = flag.Bool("tlsglue.burst", false, "BenchmarkHandshakeRemote: dial in bursts of -tlsglue.remotepar connections")

// benchChildPrefix marks the child's protocol lines on its stdout (the test
// framework writes there too).
const benchChildPrefix = "benchchild: "

type benchChildConf struct {
	Members []string // the ring; Members[0] is the parent's member
	CACert  []byte   // cluster CA certificate (DER) ...
	CAKey   []byte   // ... and key (PKCS #8), to issue the child's member certificates
	TLSRoot []byte   // PEM of the CA that signed the parent's TLS server certificates
}

// remoteBench is the parent's side: its member and the child.
type remoteBench struct {
	member  *peer.Peer
	members []string
	stdin   interface{ Write([]byte) (int, error) }
	lines   chan string
}

func BenchmarkHandshakeRemote(b *testing.B) {
	rb := startRemoteBench(b)
	for _, cert := range []struct {
		name string
		rsa  bool
	}{{"ECDSA", false}, {"RSA2048", true}} {
		leaf := getPKI(b).leaf(b, cert.rsa)
		for _, ver := range versions {
			modes := []string{"full", "local", "tlsring-remote", "tlsring-local-owner"}
			if ver.v == tls.VersionTLS13 {
				modes = append(modes, "tlsring-remote-unplaced")
			}
			if *remotePar > 1 {
				modes = append(modes, "tlsring-remote-noflight")
			}
			for _, mode := range modes {
				b.Run(cert.name+"/"+ver.name+"/"+mode, func(b *testing.B) {
					rb.bench(b, leaf, ver.v, mode)
				})
			}
		}
	}
}

// startRemoteBench starts the child (two members and the client) and the
// parent's member, and connects the ring.
func startRemoteBench(b *testing.B) *remoteBench {
	ca := transporttest.NewCA(b)
	members := transporttest.FreeUDPAddrs(b, 3)
	caKey, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		b.Fatal(err)
	}
	conf, err := json.Marshal(benchChildConf{Members: members, CACert: ca.Cert.Raw, CAKey: caKey, TLSRoot: getPKI(b).caPEM})
	if err != nil {
		b.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+string(conf))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	rb := &remoteBench{members: members, stdin: stdin, lines: make(chan string, 1)}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(rb.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), benchChildPrefix); ok {
				rb.lines <- l
			} else if t := sc.Text(); t != "PASS" && t != "" {
				fmt.Fprintln(os.Stderr, "child:", t)
			}
		}
	}()
	b.Cleanup(func() {
		stdin.Close() // the child closes its members and exits on EOF
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				b.Errorf("bench child: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			b.Error("bench child did not exit; killed")
		}
		for range rb.lines { // drain, so the reader sees EOF
		}
		<-readerDone
	})
	if _, err := rb.reply(b, "", "ready"); err != nil {
		b.Fatal(err)
	}

	rb.member, err = peer.New(peer.Config{Self: members[0], Members: members,
		TLS: ca.MemberTLS(b, "127.0.0.1"), Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rb.member.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rb.member.WarmUp(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := rb.reply(b, "warmup", "ok"); err != nil {
		b.Fatal(err)
	}
	return rb
}

// reply sends cmd to the child (unless empty) and returns the fields of its
// answer, which must start with want.
func (rb *remoteBench) reply(b *testing.B, cmd, want string) (map[string]string, error) {
	if cmd != "" {
		if _, err := fmt.Fprintln(rb.stdin, cmd); err != nil {
			return nil, fmt.Errorf("to child: %w", err)
		}
	}
	select {
	case l, ok := <-rb.lines:
		if !ok {
			return nil, errors.New("child exited")
		}
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != want {
			return nil, fmt.Errorf("child answered %q to %q", l, cmd)
		}
		kv := map[string]string{}
		for _, s := range f[1:] {
			k, v, _ := strings.Cut(s, "=")
			kv[k] = v
		}
		return kv, nil
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("child did not answer %q", cmd)
	}
}

func atoi(b *testing.B, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// benchProcServer serves handshakes one at a time (or, with
// -tlsglue.remotepar, each on its own goroutine), like benchServer, but
// on an ordinary goroutine: a goroutine locked to its thread makes every
// block and wake-up (a remote Get) a thread hand-off, a cost real servers
// do not pay. It counts connections served in served.
func benchProcServer(b *testing.B, cfg *tls.Config, served *atomic.Int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	serve := func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			tc.Write([]byte{1})
		}
		tc.Close()
		served.Add(1)
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if *remotePar > 1 {
				wg.Go(func() { serve(c) })
			} else {
				serve(c)
			}
		}
	})
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// waitServed waits (sleeping, not spinning: the wait is on the meter) until
// the server has served n connections.
func waitServed(served *atomic.Int64, n int64) {
	for served.Load() < n {
		time.Sleep(20 * time.Microsecond)
	}
}

// benchStore is the parent's member as the tlsring variants' Store, with
// its placement tokens switched on and off by place.
type benchStore struct {
	*peer.Peer
	place atomic.Bool
}

func (s *benchStore) PlacementToken() (tok [ring.TokenLen]byte, ok bool) {
	if !s.place.Load() {
		return tok, false
	}
	return s.Peer.PlacementToken()
}

func (rb *remoteBench) bench(b *testing.B, leaf tls.Certificate, v uint16, mode string) {
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf}}
	var g *Glue
	// kind is the child's name for the session placement wanted.
	kind := map[string]string{"full": "full", "local": "local",
		"tlsring-remote": "remote", "tlsring-local-owner": "owner",
		"tlsring-remote-unplaced": "remote", "tlsring-remote-noflight": "remote"}[mode]
	store := &benchStore{Peer: rb.member}
	if kind == "remote" || kind == "owner" {
		var err error
		// A generous Deadline: this benchmark measures CPU, and on 2 busy
		// cores a remote Get sometimes outlives the default 3 ms (a full
		// handshake, failing the check below); "late/op" reports how often.
		if g, err = New(store, Options{Deadline: time.Second}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { g.Close() })
		g.noFlight = mode == "tlsring-remote-noflight"
		if err := g.Install(cfg); err != nil {
			b.Fatal(err)
		}
	}
	flush := func() {
		if g == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var served atomic.Int64
	addr := benchProcServer(b, cfg, &served)

	// The child finds a session of the right placement and resumes it once.
	kv, err := rb.reply(b, fmt.Sprintf("prep %s %d %s", addr, v, kind), "ok")
	if err != nil {
		b.Fatal(err)
	}
	waitServed(&served, atoi(b, kv["dials"]))
	flush()
	if kind == "remote" || kind == "owner" {
		key, err := hex.DecodeString(kv["key"])
		if err != nil {
			b.Fatal(err)
		}
		if has, want := rb.member.HasLocal(key), kind == "owner"; has != want {
			b.Fatalf("%s: parent's member holds the session: %v, want %v", mode, has, want)
		}
	}
	store.place.Store(mode != "tlsring-remote-unplaced")
	runtime.GC()

	late0 := lateLookups(g)
	b.ResetTimer()
	served0 := served.Load()
	cpu0 := cpuTime(syscall.RUSAGE_SELF)
	run := fmt.Sprintf("run %d %d", b.N, max(1, *remotePar))
	if *burst {
		run += " burst"
	}
	kv, err = rb.reply(b, run, "done")
	if err != nil {
		b.Fatal(err)
	}
	// The child returns once it has read the server's byte; the server
	// closes, publishes, and the writes it queued land, after that.
	waitServed(&served, served0+int64(b.N))
	flush()
	cpu := cpuTime(syscall.RUSAGE_SELF) - cpu0
	b.StopTimer()

	resumed, n := atoi(b, kv["resumed"]), float64(b.N)
	if want := kind != "full"; want && resumed != int64(b.N) || !want && resumed != 0 {
		b.Fatalf("%s: %d of %d handshakes resumed; lookups %s", mode, resumed, b.N, lookupCounts(g))
	}
	b.ReportMetric(float64(cpu)/n, "srv-ns/op")
	b.ReportMetric(float64(atoi(b, kv["wall"]))/n, "wall-ns/op")
	b.ReportMetric(float64(atoi(b, kv["cpu"]))/n, "child-ns/op")
	if g != nil {
		b.ReportMetric(float64(atoi(b, kv["gets"]))/n, "gets/op")
		b.ReportMetric(float64(atoi(b, kv["sets"]))/n, "sets/op")
		b.ReportMetric(float64(lateLookups(g)-late0)/n, "late/op")
	}
}

// lateLookups returns how many of g's lookups took over 3.2 ms (the
// latency histogram's bucket boundary nearest the default Deadline).
func lateLookups(g *Glue) uint64 {
	if g == nil {
		return 0
	}
	var d dto.Metric
	if err := g.m.latency.Write(&d); err != nil {
		panic(err)
	}
	h := d.GetHistogram()
	for _, bk := range h.GetBucket() {
		if bk.GetUpperBound() >= 3.2e-3-1e-9 {
			return h.GetSampleCount() - bk.GetCumulativeCount()
		}
	}
	return 0
}

// lookupCounts lists g's non-zero lookup results.
func lookupCounts(g *Glue) string {
	if g == nil {
		return "(no tlsglue)"
	}
	var out []string
	for lr, name := range lookupResults {
		if v := value(g.m.lookups[lr]); v > 0 {
			out = append(out, fmt.Sprintf("%s=%v", name, v))
		}
	}
	return strings.Join(out, " ")
}

// TestBenchChild is the child process of BenchmarkHandshakeRemote; in any
// other run it returns at once.
func TestBenchChild(t *testing.T) {
	env := os.Getenv(benchChildEnv)
	if env == "" {
		return
	}
	if err := benchChild(env); err != nil {
		fmt.Printf("%serr %v\n", benchChildPrefix, strings.ReplaceAll(err.Error(), "\n", " "))
		t.Fatal(err)
	}
}

func benchChild(env string) error {
	var conf benchChildConf
	if err := json.Unmarshal([]byte(env), &conf); err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(conf.CACert)
	if err != nil {
		return err
	}
	key, err := x509.ParsePKCS8PrivateKey(conf.CAKey)
	if err != nil {
		return err
	}
	caKey, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("cluster CA key is not ECDSA")
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	ca := &transporttest.CA{Cert: caCert, Key: caKey, Pool: pool}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(conf.TLSRoot) {
		return errors.New("bad TLS root")
	}

	parent := conf.Members[0]
	var members []*peer.Peer
	var regs []*prometheus.Registry
	defer func() {
		for _, m := range members {
			m.Close()
		}
	}()
	for _, self := range conf.Members[1:] {
		tlsConf, err := ca.MemberTLSErr("127.0.0.1")
		if err != nil {
			return err
		}
		reg := prometheus.NewRegistry()
		m, err := peer.New(peer.Config{Self: self, Members: conf.Members, TLS: tlsConf, Logger: quietLog, Registerer: reg})
		if err != nil {
			return err
		}
		members = append(members, m)
		regs = append(regs, reg)
	}
	holds := func(key []byte, m string) bool {
		for i, p := range members {
			if p.Self() == m {
				return members[i].HasLocal(key)
			}
		}
		return false
	}
	// served is the number of requests of operation op the child's
	// members have served.
	served := func(op string) (int64, error) {
		var n float64
		for _, reg := range regs {
			mfs, err := reg.Gather()
			if err != nil {
				return 0, err
			}
			for _, mf := range mfs {
				if mf.GetName() != "tlsring_peer_served_requests_total" {
					continue
				}
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "op" && l.GetValue() == op {
							n += m.GetCounter().GetValue()
						}
					}
				}
			}
		}
		return int64(n), nil
	}
	gets := func() (int64, int64, error) {
		g, err := served("get")
		if err != nil {
			return 0, 0, err
		}
		s, err := served("set")
		return g, s, err
	}
	say := func(format string, args ...any) { fmt.Printf(benchChildPrefix+format+"\n", args...) }
	say("ready")

	var (
		addr string
		ccfg *tls.Config
	)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "warmup":
			for _, m := range members {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := m.WarmUp(ctx)
				cancel()
				if err != nil {
					return err
				}
			}
			say("ok")

		case "prep": // prep <addr> <version> <full|local|remote|owner>
			if len(f) != 4 {
				return fmt.Errorf("bad command %q", in.Text())
			}
			addr = f[1]
			v, err := strconv.ParseUint(f[2], 10, 16)
			if err != nil {
				return err
			}
			ccfg = &tls.Config{RootCAs: roots, ServerName: testSNI, MinVersion: uint16(v), MaxVersion: uint16(v)}
			dials, keyHex := 0, "-"
			if f[3] != "full" {
				fc := newFixedCache(nil)
				ccfg.ClientSessionCache = fc
				for tries := 0; ; tries++ {
					if tries == 100 {
						return errors.New("no session with the wanted placement in 100 tries")
					}
					fc.offer, fc.latest = nil, nil
					dials++
					if _, err := benchDial(addr, ccfg); err != nil {
						return err
					}
					if fc.latest == nil {
						return errors.New("no session received")
					}
					if f[3] == "local" {
						break
					}
					ticket, _, err := fc.latest.ResumptionState()
					if err != nil {
						return err
					}
					hd, ok := parseHandle(ticket)
					if !ok {
						return fmt.Errorf("ticket of %d bytes is not a tlsring handle", len(ticket))
					}
					sk, _ := hd.keys()
					owners := members[0].Owners(sk.bytes())
					if f[3] == "remote" && slices.Contains(owners, parent) ||
						f[3] == "owner" && owners[0] != parent {
						continue
					}
					// Wait for the copies the child's members hold.
					deadline := time.Now().Add(10 * time.Second)
					for _, o := range owners {
						for o != parent && !holds(sk.bytes(), o) {
							if time.Now().After(deadline) {
								return errors.New("session never reached its copies")
							}
							time.Sleep(time.Millisecond)
						}
					}
					keyHex = hex.EncodeToString(sk.bytes())
					break
				}
				fc.offer = fc.latest
			}
			// One handshake as measured, to check it and warm up.
			dials++
			r, err := benchDial(addr, ccfg)
			if err != nil {
				return err
			}
			if want := f[3] != "full"; r != want {
				return fmt.Errorf("prep %s: resumed %v", f[3], r)
			}
			say("ok dials=%d key=%s", dials, keyHex)

		case "run": // run <n> <parallel> [burst]
			if len(f) != 3 && (len(f) != 4 || f[3] != "burst") || ccfg == nil {
				return fmt.Errorf("bad command %q", in.Text())
			}
			n, err1 := strconv.Atoi(f[1])
			par, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil || par < 1 {
				return fmt.Errorf("bad command %q", in.Text())
			}
			gets0, sets0, err := gets()
			if err != nil {
				return err
			}
			var resumed, next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, par)
			dial := func() bool {
				r, err := benchDial(addr, ccfg)
				if err != nil {
					errs <- err
					return false
				}
				if r {
					resumed.Add(1)
				}
				return true
			}
			cpu0, start := cpuTime(syscall.RUSAGE_SELF), time.Now()
			if len(f) == 4 { // bursts: par dials at once, the next burst when all are done
				for sent := 0; sent < n && len(errs) == 0; sent += par {
					for range min(par, n-sent) {
						wg.Go(func() { dial() })
					}
					wg.Wait()
				}
			} else {
				for range par {
					wg.Go(func() {
						for next.Add(1) <= int64(n) && dial() {
						}
					})
				}
				wg.Wait()
			}
			wall, cpu := time.Since(start), cpuTime(syscall.RUSAGE_SELF)-cpu0
			select {
			case err := <-errs:
				return err
			default:
			}
			gets1, sets1, err := gets()
			if err != nil {
				return err
			}
			say("done resumed=%d wall=%d cpu=%d gets=%d sets=%d", resumed.Load(), wall.Nanoseconds(), cpu.Nanoseconds(), gets1-gets0, sets1-sets0)

		default:
			return fmt.Errorf("bad command %q", in.Text())
		}
	}
	return in.Err()
}
