// demo_http3_clients.go: the HTTP/3 requests of the demo's client process:
// each request is a new QUIC connection (quic-go) through a socket that
// delays every datagram by half the emulated round trip each way, sending
// its GET in 0-RTT when the client holds a session, and timed to the
// first response.

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3RequestOnce sends one GET of client c to server on a new connection,
// in 0-RTT if c holds a session, reads the response and waits for the
// session ticket the server sends after the handshake. d is the time from
// dialing to the response headers. If the server refuses the early data,
// the request is sent again on a new connection once the handshake is done
// (see printH3Table's note [4]), and d is the refused connection's
// handshake time plus the resend's request round trip.
func h3RequestOnce(ctx context.Context, c *demoClient, server string, rtt time.Duration) (visit, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.cache.offered = false
	for len(c.cache.puts) > 0 {
		<-c.cache.puts
	}
	start := time.Now()
	conn, closeConn, err := dialH3(ctx, server, c.conf, rtt, true)
	if err != nil {
		return visit{}, err
	}
	defer closeConn()
	var v visit
	rsp, err := h3Get(ctx, conn, http3.MethodGet0RTT)
	switch {
	case err == nil:
		v.d = time.Since(start)
		if err := drain(rsp); err != nil {
			return visit{}, err
		}
		select {
		case <-conn.HandshakeComplete():
		case <-ctx.Done():
			return visit{}, errors.New("the handshake did not complete")
		}
		cs := conn.ConnectionState()
		v.resumed, v.early = cs.TLS.DidResume, cs.Used0RTT
	case errors.Is(err, quic.Err0RTTRejected):
		select {
		case <-conn.HandshakeComplete():
		case <-conn.Context().Done(): // see quic-go/quic-go#4706
		case <-ctx.Done():
			return visit{}, errors.New("the handshake that refused the early data did not end")
		}
		handshake := time.Since(start)
		v.resumed = conn.ConnectionState().TLS.DidResume
		closeConn()
		conn2, close2, err := dialH3(ctx, server, c.conf, rtt, false)
		if err != nil {
			return visit{}, fmt.Errorf("resending after the early data was refused: %w", err)
		}
		defer close2()
		sent := time.Now()
		rsp, err := h3Get(ctx, conn2, http.MethodGet)
		if err != nil {
			return visit{}, fmt.Errorf("resending after the early data was refused: %w", err)
		}
		v.d = handshake + time.Since(sent)
		if err := drain(rsp); err != nil {
			return visit{}, err
		}
	default:
		return visit{}, err
	}
	v.offered = c.cache.offered
	select {
	case <-c.cache.puts:
	case <-ctx.Done():
		return visit{}, errors.New("no session ticket received")
	}
	return v, nil
}

// h3Get sends GET (or GET_0RTT) for / on a new HTTP/3 client connection
// over conn.
func h3Get(ctx context.Context, conn *quic.Conn, method string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://localhost/", nil)
	if err != nil {
		return nil, err
	}
	return (&http3.Transport{}).NewClientConn(conn).RoundTrip(req)
}

func drain(rsp *http.Response) error {
	defer rsp.Body.Close()
	if _, err := io.Copy(io.Discard, rsp.Body); err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if rsp.StatusCode != http.StatusOK {
		return fmt.Errorf("response %s", rsp.Status)
	}
	return nil
}

// dialH3 dials server from a new loopback socket, delayed by rtt (half
// each way); early dials with quic.DialEarly (0-RTT if conf's cache holds
// a session). closeConn closes the connection and the socket, once.
func dialH3(ctx context.Context, server string, conf *tls.Config, rtt time.Duration, early bool) (conn *quic.Conn, closeConn func(), err error) {
	to, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, nil, err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}
	var pc net.PacketConn = udp
	if rtt > 0 {
		pc = newDelayConn(udp, rtt/2)
	}
	tr := &quic.Transport{Conn: pc}
	closeConn = sync.OnceFunc(func() {
		if conn != nil {
			conn.CloseWithError(0, "")
		}
		pc.Close() // after the CONNECTION_CLOSE went out (delayConn flushes)
		tr.Close()
	})
	dial := tr.Dial
	if early {
		dial = tr.DialEarly
	}
	conn, err = dial(ctx, to, conf, &quic.Config{})
	if err != nil {
		closeConn()
		return nil, nil, err
	}
	return conn, closeConn, nil
}

// delayConn is a PacketConn that delays every datagram it sends and every
// one it receives by d: a path with a round trip of 2d. A full queue drops,
// as a congested link would.
type delayConn struct {
	net.PacketConn
	d                time.Duration
	in               chan datagram // closed by the reader when the socket is closed
	out              chan datagram // closed by Close; the writer drains it
	mu               sync.Mutex    // guards closed and sends on out
	closed           bool
	reading, writing sync.WaitGroup
}

type datagram struct {
	b   []byte
	to  net.Addr
	due time.Time
}

func newDelayConn(pc net.PacketConn, d time.Duration) *delayConn {
	c := &delayConn{PacketConn: pc, d: d, in: make(chan datagram, 256), out: make(chan datagram, 256)}
	c.reading.Go(c.reader)
	c.writing.Go(c.writer)
	return c
}

func (c *delayConn) reader() {
	defer close(c.in)
	for {
		buf := make([]byte, 2048)
		n, from, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return // quic.Transport.Close unblocks its reader with a deadline
			}
			continue
		}
		select {
		case c.in <- datagram{b: buf[:n], to: from, due: time.Now().Add(c.d)}:
		default: // queue full: dropped
		}
	}
}

// ReadFrom returns the next datagram once its delay has passed.
func (c *delayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	dg, ok := <-c.in
	if !ok {
		return 0, nil, net.ErrClosed
	}
	time.Sleep(time.Until(dg.due))
	return copy(p, dg.b), dg.to, nil
}

// WriteTo queues p to be sent once its delay has passed.
func (c *delayConn) WriteTo(p []byte, to net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	select {
	case c.out <- datagram{b: bytes.Clone(p), to: to, due: time.Now().Add(c.d)}:
	default: // queue full: dropped
	}
	return len(p), nil
}

func (c *delayConn) writer() {
	for dg := range c.out {
		time.Sleep(time.Until(dg.due))
		c.PacketConn.WriteTo(dg.b, dg.to)
	}
}

// Close sends what is queued (each at its time), then closes the socket.
func (c *delayConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.out)
	c.mu.Unlock()
	c.writing.Wait()
	err := c.PacketConn.Close()
	c.reading.Wait()
	return err
}
