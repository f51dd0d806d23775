//go:build linux

// bench_test.go: server CPU per handshake, full versus resumed locally
// (crypto/tls's own stateless tickets) versus resumed through tlsglue with an
// in-memory Store; plus micro-benchmarks of the hooks.
//
// How server CPU is measured: client and server run in this process over
// loopback TCP, one handshake at a time. The server handles connections on
// one goroutine locked to its OS thread and reads that thread's CPU time
// (getrusage(RUSAGE_THREAD), user+sys, so the kernel's TCP work on that
// thread counts) after each connection; "srv-ns/op" is its growth per
// handshake. tlsglue's store write normally runs on a worker goroutine; here
// the writer runs inline (writer.inline) so that sealing and the store write
// land on the measured thread too. Not counted, for any variant: background
// GC marking and the scheduler's spinning threads; "proc-ns/op" (the whole
// process, client included) is reported as a cross-check.
//
//	go test -run '^$' -bench Handshake -benchtime 3000x -count 5 ./tlsglue

package tlsglue

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const rusageThread = 1 // RUSAGE_THREAD on Linux

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchServer serves handshakes one at a time on a locked thread:
// handshake, write a byte, close; then it publishes the thread's CPU time.
func benchServer(b *testing.B, cfg *tls.Config, cpu, served *atomic.Int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		one := []byte{1}
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, cfg)
			if tc.Handshake() == nil {
				tc.Write(one)
			}
			tc.Close()
			cpu.Store(int64(cpuTime(rusageThread)))
			served.Add(1)
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// benchDial runs one client handshake and reads the server's byte.
func benchDial(addr string, cfg *tls.Config) (bool, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false, err
	}
	tc := tls.Client(c, cfg)
	defer tc.Close()
	if err := tc.Handshake(); err != nil {
		return false, err
	}
	var one [1]byte
	if _, err := io.ReadFull(tc, one[:]); err != nil {
		return false, err
	}
	return tc.ConnectionState().DidResume, nil
}

func BenchmarkHandshake(b *testing.B) {
	for _, cert := range []struct {
		name string
		rsa  bool
	}{{"ECDSA", false}, {"RSA2048", true}} {
		leaf := getPKI(b).leaf(b, cert.rsa)
		for _, ver := range versions {
			for _, mode := range []string{"full", "local", "tlsring"} {
				b.Run(cert.name+"/"+ver.name+"/"+mode, func(b *testing.B) {
					cfg := &tls.Config{Certificates: []tls.Certificate{leaf}}
					var g *Glue
					if mode == "tlsring" {
						var err error
						if g, err = New(newMemStore(), Options{}); err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { g.Close() })
						if err := g.Install(cfg); err != nil {
							b.Fatal(err)
						}
						g.w.inline = true
					}
					var srvCPU, served atomic.Int64
					addr := benchServer(b, cfg, &srvCPU, &served)
					ccfg := clientConfig(b, ver.v)
					ccfg.ClientSessionCache = nil
					if mode != "full" {
						fc := newFixedCache(nil)
						ccfg.ClientSessionCache = fc
						if _, err := benchDial(addr, ccfg); err != nil {
							b.Fatal(err)
						}
						if g != nil {
							if err := g.Flush(context.Background()); err != nil {
								b.Fatal(err)
							}
						}
						// Every iteration offers the session of this first
						// handshake (the store is not single-use), so no
						// iteration races the previous one's write.
						fc.offer = fc.latest
					}
					if _, err := benchDial(addr, ccfg); err != nil { // settle
						b.Fatal(err)
					}
					runtime.GC()
					resumed := 0
					b.ResetTimer()
					for served.Load() < 1 { // the settling connection is fully served
						runtime.Gosched()
					}
					for mode != "full" && served.Load() < 2 {
						runtime.Gosched()
					}
					served0 := served.Load()
					proc0, srv0 := cpuTime(syscall.RUSAGE_SELF), srvCPU.Load()
					for range b.N {
						r, err := benchDial(addr, ccfg)
						if err != nil {
							b.Fatal(err)
						}
						if r {
							resumed++
						}
					}
					// The server publishes its CPU after closing; the client may
					// return before that.
					for served.Load() < served0+int64(b.N) {
						runtime.Gosched()
					}
					srv, proc := time.Duration(srvCPU.Load()-srv0), cpuTime(syscall.RUSAGE_SELF)-proc0
					b.StopTimer()
					if want := mode != "full"; want && resumed != b.N || !want && resumed != 0 {
						b.Fatalf("%s: %d of %d handshakes resumed", mode, resumed, b.N)
					}
					b.ReportMetric(float64(srv)/float64(b.N), "srv-ns/op")
					b.ReportMetric(float64(proc)/float64(b.N), "proc-ns/op")
				})
			}
		}
	}
}

// benchHit returns an installed Config and an identity whose session is in
// the store, bound to testSNI.
func benchHit(b *testing.B, opts Options) (*tls.Config, []byte) {
	store := newMemStore()
	srv := newServers(b, store, 1, opts)
	sess := session(b, srv[0], tls.VersionTLS13, testSNI)
	ticket, _, err := sess.ResumptionState()
	if err != nil {
		b.Fatal(err)
	}
	return srv[0].cfg, ticket
}

// BenchmarkUnwrapHit: one per-handshake clone plus a hit, as crypto/tls
// does it for a resuming ClientHello.
func BenchmarkUnwrapHit(b *testing.B) {
	cfg, ticket := benchHit(b, Options{})
	cs := tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13}
	chi := &tls.ClientHelloInfo{}
	b.ReportAllocs()
	for b.Loop() {
		c, _ := cfg.GetConfigForClient(chi)
		if ss, _ := c.UnwrapSession(ticket, cs); ss == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkUnwrapHitShared: a hit without the per-handshake clone
// (Options.NoHandshakeContext).
func BenchmarkUnwrapHitShared(b *testing.B) {
	cfg, ticket := benchHit(b, Options{NoHandshakeContext: true})
	cs := tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13}
	b.ReportAllocs()
	for b.Loop() {
		if ss, _ := cfg.UnwrapSession(ticket, cs); ss == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkKeys: the HKDF derivation done once per lookup and once per write.
func BenchmarkKeys(b *testing.B) {
	h := newHandle(nil)
	b.ReportAllocs()
	for b.Loop() {
		h.keys()
	}
}

// BenchmarkWrapWrite: WrapSession plus the write it queues (sealing and an
// in-memory Set), run inline: tlsglue's whole per-ticket CPU.
func BenchmarkWrapWrite(b *testing.B) {
	store := newMemStore()
	srv := newServers(b, store, 1, Options{})
	var state *tls.SessionState
	cfg := srv[0].cfg
	inner := cfg.WrapSession
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		if state == nil {
			bs, _ := ss.Bytes()
			state, _ = tls.ParseSessionState(bs)
		}
		return inner(cs, ss)
	}
	session(b, srv[0], tls.VersionTLS13, testSNI)
	srv[0].glue.w.inline = true
	cs := tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13}
	b.ReportAllocs()
	for b.Loop() {
		state.Extra = state.Extra[:0]
		if _, err := inner(cs, state); err != nil {
			b.Fatal(err)
		}
	}
}
