// bench_transport.go: the transport rows of `tlsring bench` (the method of
// transport/benchcmp): remote lookups of one value size on loopback over
//
//   - quic:      the tlsring QUIC transport (mutual TLS, one multiplexed
//     stream), a caller and a serving member in this process;
//   - tcp:       a bare TCP request/response floor, the same frame layout
//     and handler over plain TCP, no TLS, one request at a time per
//     connection, the server answering inline;
//   - memcached: the memcached the bench started, answering "get key" on
//     the text protocol (its CPU read from /proc).
//
// Each reports lookup p50/p99 at concurrency 1 and lookups per second at
// concurrency -transport-conc (a connection per worker for tcp and
// memcached; one QUIC connection, as a member has to each other member),
// and CPU per lookup with both ends counted.

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsring/tlsring/transport"
)

// The transport paths, in the report's order.
const (
	pathQUIC      = "quic"
	pathTCP       = "tcp"
	pathMemcached = "memcached"
)

// transportPaths describes each path.
var transportPaths = []struct{ name, desc string }{
	{pathQUIC, "tlsring QUIC transport (mutual TLS), caller and member in one process"},
	{pathTCP, "bare TCP request/response floor: same frames, no TLS, served inline"},
	{pathMemcached, "memcached text protocol get, memcached's CPU counted"},
}

// getter is one path under test. get must be safe for concurrent use by
// distinct workers.
type getter interface {
	get(worker int, key []byte) (int, error)
	close()
}

// transportResult is one path's measurement in one round.
type transportResult struct {
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	Rate    float64 `json:"lookups_per_s"`
	CPUusOp float64 `json:"cpu_us_per_lookup"` // both ends (this process, and memcached for its path)
}

// transportBench holds what every round's transport rows share.
type transportBench struct {
	o         *benchOptions
	memberTLS *tls.Config
	log       *slog.Logger
	mc        *memcachedProc
	keys      [][]byte
	value     []byte
}

func newTransportBench(o *benchOptions, memberTLS *tls.Config, mc *memcachedProc, log *slog.Logger) *transportBench {
	tb := &transportBench{o: o, memberTLS: memberTLS, mc: mc, log: log}
	tb.keys = make([][]byte, 1000)
	for i := range tb.keys {
		tb.keys[i] = fmt.Appendf(nil, "bench-transport-key-%032d", i)
	}
	tb.value = make([]byte, o.valueSize)
	for i := range tb.value {
		tb.value[i] = byte(i)
	}
	return tb
}

// measure sets up path, measures it and tears it down.
func (tb *transportBench) measure(ctx context.Context, path string) (transportResult, error) {
	var g getter
	var err error
	extraCPU := func() (time.Duration, error) { return 0, nil }
	switch path {
	case pathQUIC:
		g, err = newQUICGetter(tb.memberTLS, tb.log, tb.keys, tb.value)
	case pathTCP:
		g, err = newTCPGetter(tb.keys, tb.value, tb.o.transportConc)
	case pathMemcached:
		g, err = newMCGetter(tb.mc.addr, tb.keys, tb.value, tb.o.transportConc)
		extraCPU = func() (time.Duration, error) { return otherProcessCPU(tb.mc.pid()) }
	default:
		return transportResult{}, fmt.Errorf("unknown transport path %q", path)
	}
	if err != nil {
		return transportResult{}, fmt.Errorf("%s: %w", path, err)
	}
	defer g.close()
	r, err := tb.run(ctx, g, extraCPU)
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// run warms g up, times -transport-samples lookups one at a time, then
// counts lookups at -transport-conc for -transport-duration.
func (tb *transportBench) run(ctx context.Context, g getter, extraCPU func() (time.Duration, error)) (transportResult, error) {
	var r transportResult
	keys, vlen := tb.keys, len(tb.value)
	for i := range 500 {
		if n, err := g.get(0, keys[i%len(keys)]); err != nil || n != vlen {
			return r, fmt.Errorf("warm-up get: %d bytes, %v", n, err)
		}
	}
	lat := make([]time.Duration, tb.o.transportSamples)
	for i := range lat {
		start := time.Now()
		n, err := g.get(0, keys[i%len(keys)])
		lat[i] = time.Since(start)
		if err != nil || n != vlen {
			return r, fmt.Errorf("get: %d bytes, %v", n, err)
		}
		if i%256 == 0 && ctx.Err() != nil {
			return r, ctx.Err()
		}
	}
	slices.Sort(lat)
	r.P50us, r.P99us = us(lat[len(lat)/2]), us(lat[len(lat)*99/100])

	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, tb.o.transportConc)
	cpu0, ok := processCPU()
	if !ok {
		return r, errors.New("this platform does not report the process's CPU time")
	}
	extra0, err := extraCPU()
	if err != nil {
		return r, err
	}
	start := time.Now()
	for w := range tb.o.transportConc {
		wg.Go(func() {
			n := 0
			for i := w * 7; !stop.Load(); i++ {
				if l, err := g.get(w, keys[i%len(keys)]); err != nil || l != vlen {
					errc <- fmt.Errorf("get: %d bytes, %v", l, err)
					stop.Store(true)
					return
				}
				n++
			}
			count.Add(int64(n))
		})
	}
	select {
	case <-time.After(tb.o.transportDuration):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := processCPU()
	extra1, err := extraCPU()
	if err != nil {
		return r, err
	}
	select {
	case err := <-errc:
		return r, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	n := max(1, count.Load())
	r.Rate = float64(count.Load()) / elapsed.Seconds()
	r.CPUusOp = us(cpu1-cpu0+extra1-extra0) / float64(n)
	return r, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// kvStore is the handler every Go path serves: a read-mostly map.
type kvStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newKVStore(keys [][]byte, value []byte) *kvStore {
	s := &kvStore{m: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		s.m[string(k)] = value
	}
	return s
}

func (s *kvStore) ServeMember(_ context.Context, req *transport.Request) *transport.Response {
	s.mu.RLock()
	v, ok := s.m[string(req.Key)]
	s.mu.RUnlock()
	if !ok {
		return &transport.Response{Status: transport.StatusNotFound}
	}
	return &transport.Response{Status: transport.StatusOK, Value: v, TTL: time.Hour}
}

// quicGetter: two QUIC transports in this process, one calling the other.
type quicGetter struct {
	client, server transport.Transport
	serverAddr     string
}

func newQUICGetter(memberTLS *tls.Config, log *slog.Logger, keys [][]byte, value []byte) (*quicGetter, error) {
	listen := func(h transport.Handler) (transport.Transport, string, error) {
		var lastErr error
		for range 3 { // a port picked free can be taken before we bind it
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, "", err
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port))
			c.Close()
			t, err := transport.ListenQUIC(transport.QUICConfig{Addr: addr, TLS: memberTLS, Logger: log}, h)
			if err == nil {
				return t, addr, nil
			}
			lastErr = err
		}
		return nil, "", lastErr
	}
	srv, addr, err := listen(newKVStore(keys, value))
	if err != nil {
		return nil, err
	}
	cli, _, err := listen(transport.HandlerFunc(func(context.Context, *transport.Request) *transport.Response {
		return &transport.Response{Status: transport.StatusError}
	}))
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &quicGetter{client: cli, server: srv, serverAddr: addr}, nil
}

func (q *quicGetter) get(_ int, key []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := q.client.Call(ctx, q.serverAddr, &transport.Request{Op: transport.OpGet, Key: key})
	if err != nil {
		return 0, err
	}
	if r.Status != transport.StatusOK {
		return 0, fmt.Errorf("status %v", r.Status)
	}
	return len(r.Value), nil
}

func (q *quicGetter) close() { q.client.Close(); q.server.Close() }

// tcpGetter: the TCP floor. Frames follow the transport's layout (4-byte
// length, version, ID, op, deadline, ttl, key, value, entry count; the
// response with status, ttl, value and message); one connection per
// worker, one request at a time, the server serving inline.
type tcpGetter struct {
	ln    net.Listener
	conns []*tcpConn
	wg    sync.WaitGroup
}

type tcpConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
	hdr [4]byte
}

func newTCPGetter(keys [][]byte, value []byte, conc int) (*tcpGetter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := newKVStore(keys, value)
	g := &tcpGetter{ln: ln}
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.wg.Go(func() {
				defer c.Close()
				serveTCPFloor(c, s)
			})
		}
	})
	for range conc {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			g.close()
			return nil, err
		}
		g.conns = append(g.conns, &tcpConn{c: c, r: bufio.NewReaderSize(c, 16<<10)})
	}
	return g, nil
}

func serveTCPFloor(c net.Conn, s *kvStore) {
	r := bufio.NewReaderSize(c, 16<<10)
	var hdr [4]byte
	var out []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n < 29 || n > 2<<20 {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		// version(1) id(8) op(1) deadline(4) ttl(8) keylen(1) key ...
		id := binary.BigEndian.Uint64(body[1:])
		kl := int(body[22])
		if 23+kl > len(body) {
			return
		}
		resp := s.ServeMember(context.Background(), &transport.Request{Op: transport.Op(body[9]), Key: body[23 : 23+kl]})
		out = out[:0]
		out = binary.BigEndian.AppendUint32(out, uint32(1+8+1+8+4+len(resp.Value)+2))
		out = append(out, 1)
		out = binary.BigEndian.AppendUint64(out, id)
		out = append(out, byte(resp.Status))
		out = binary.BigEndian.AppendUint64(out, uint64(resp.TTL))
		out = binary.BigEndian.AppendUint32(out, uint32(len(resp.Value)))
		out = append(out, resp.Value...)
		out = binary.BigEndian.AppendUint16(out, 0)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func (g *tcpGetter) get(w int, key []byte) (int, error) {
	c := g.conns[w]
	b := c.buf[:0]
	b = binary.BigEndian.AppendUint32(b, uint32(1+8+1+4+8+1+len(key)+4+2))
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, 1)
	b = append(b, byte(transport.OpGet))
	b = binary.BigEndian.AppendUint32(b, 1e6)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = append(b, byte(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, 0)
	c.buf = b
	if _, err := c.c.Write(b); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(c.hdr[:])
	if n < 22 {
		return 0, errors.New("short response")
	}
	body := make([]byte, n) // the caller owns the value, as with Call
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, err
	}
	if body[9] != byte(transport.StatusOK) {
		return 0, errors.New("not found")
	}
	return int(binary.BigEndian.Uint32(body[18:])), nil
}

func (g *tcpGetter) close() {
	for _, c := range g.conns {
		c.c.Close()
	}
	g.ln.Close()
	g.wg.Wait()
}

// mcGetter: a minimal memcached text-protocol client, one connection per
// worker.
type mcGetter struct {
	conns []*mcConn
}

type mcConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func newMCGetter(addr string, keys [][]byte, value []byte, conc int) (*mcGetter, error) {
	g := &mcGetter{}
	for range conc {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			g.close()
			return nil, err
		}
		g.conns = append(g.conns, &mcConn{c: c, r: bufio.NewReaderSize(c, 16<<10)})
	}
	c := g.conns[0]
	for _, k := range keys {
		fmt.Fprintf(c.c, "set %s 0 0 %d\r\n", k, len(value))
		c.c.Write(value)
		c.c.Write([]byte("\r\n"))
		line, err := c.r.ReadString('\n')
		if err != nil || line != "STORED\r\n" {
			g.close()
			return nil, fmt.Errorf("memcached set: %q %v", line, err)
		}
	}
	return g, nil
}

func (g *mcGetter) get(w int, key []byte) (int, error) {
	c := g.conns[w]
	b := append(c.buf[:0], "get "...)
	b = append(b, key...)
	b = append(b, "\r\n"...)
	c.buf = b
	if _, err := c.c.Write(b); err != nil {
		return 0, err
	}
	// VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if string(line) == "END\r\n" {
		return 0, errors.New("miss")
	}
	f := splitFields(line)
	if len(f) < 4 || string(f[0]) != "VALUE" {
		return 0, fmt.Errorf("memcached: unexpected %q", line)
	}
	n, err := strconv.Atoi(string(f[3]))
	if err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("memcached: bad length in %q", line)
	}
	data := make([]byte, n+2) // the caller owns the value
	if _, err := io.ReadFull(c.r, data); err != nil {
		return 0, err
	}
	end, err := c.r.ReadSlice('\n')
	if err != nil || string(end) != "END\r\n" {
		return 0, fmt.Errorf("memcached: %q %v", end, err)
	}
	return n, nil
}

func splitFields(line []byte) [][]byte {
	var f [][]byte
	start := -1
	for i, c := range line {
		if c == ' ' || c == '\r' || c == '\n' {
			if start >= 0 {
				f = append(f, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return f
}

func (g *mcGetter) close() {
	for _, c := range g.conns {
		c.c.Close()
	}
}
