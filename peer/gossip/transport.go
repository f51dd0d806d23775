// The transport memberlist gossips over: QUIC with mutual TLS and the
// cluster CA, on a socket of its own (the gossip address) with its own
// ALPN. memberlist's packets (probes, acks, gossip) travel as QUIC
// datagrams, unreliable like the UDP they were designed for, on a
// connection per destination that is dialled on demand and kept while it
// is used; a packet too large for one datagram goes on a unidirectional
// stream. memberlist's streams (state exchange on join and anti-entropy,
// fallback probes) are bidirectional QUIC streams. A party without a
// certificate of the cluster CA completes no handshake, so it can neither
// send a packet nor open a stream.

package gossip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/quic-go/quic-go"
	"github.com/tlsring/tlsring/transport"
)

// ALPN is the application protocol gossip connections negotiate; a party
// speaking anything else (the peer protocol included) is refused during
// the handshake.
const ALPN = "tlsring-gossip/1"

// Bounds on what a remote party can make this member hold.
const (
	maxPacketSize    = 64 << 10 // a packet on a unidirectional stream
	packetQueue      = 256      // packets received, not yet taken by memberlist
	sendQueue        = 64       // packets per destination not yet sent
	maxStreamsPerCon = 16       // concurrent memberlist streams one connection may open
	maxUniPerCon     = 16       // concurrent packet streams one connection may open
	idleTimeout      = 10 * time.Second
	senderIdle       = 30 * time.Second // a destination's sender exits after this long unused
	uniWriteTimeout  = 2 * time.Second
	dialBackoff      = 200 * time.Millisecond
	// handshakeTimeout bounds a dial. Packets wait for it only on their
	// destination's own queue, and a join waits for it per seed: roomy,
	// for members on a loaded machine.
	handshakeTimeout = 3 * time.Second
)

// quicTransport is a memberlist.NodeAwareTransport over QUIC.
type quicTransport struct {
	log     *slog.Logger
	addr    string // the real listening address
	ip      net.IP
	port    int
	udp     *net.UDPConn
	tr      *quic.Transport
	ln      *quic.Listener
	qconf   *quic.Config
	client  *tls.Config
	metrics *metrics

	packets chan *memberlist.Packet
	streams chan net.Conn

	ctx    context.Context // canceled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	dests   map[string]*dest        // outgoing, by gossip address
	inbound map[*quic.Conn]struct{} // for Shutdown
}

var _ memberlist.NodeAwareTransport = (*quicTransport)(nil)

// dest is one destination: its connection, dialled on demand, and the
// packets waiting to go to it.
type dest struct {
	addr  string
	queue chan []byte

	mu        sync.Mutex
	conn      *quic.Conn
	dialing   chan struct{} // closed when the dial under way ends; nil: none
	failUntil time.Time     // a dial failed: fail fast until then
}

// listen starts the gossip socket on addr with the member's TLS. authorize,
// if not nil, is asked about every certificate of the cluster CA on both
// ends (a deny list of retired certificates).
func listen(addr string, base *tls.Config, authorize func(*x509.Certificate) error, log *slog.Logger, m *metrics) (*quicTransport, error) {
	if base == nil || len(base.Certificates) == 0 {
		return nil, errors.New("gossip: Config.TLS needs this member's certificate")
	}
	if base.RootCAs == nil || base.ClientCAs == nil {
		return nil, errors.New("gossip: Config.TLS needs the cluster CA in RootCAs and ClientCAs")
	}
	uaddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("gossip: listen address %q: %w", addr, err)
	}
	if uaddr.IP == nil || uaddr.IP.IsUnspecified() {
		return nil, fmt.Errorf("gossip: listen address %q: want the IP other members reach this one at, not a wildcard", addr)
	}
	udp, err := net.ListenUDP("udp", uaddr)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	got := udp.LocalAddr().(*net.UDPAddr)
	t := &quicTransport{
		log:     log,
		addr:    net.JoinHostPort(uaddr.IP.String(), strconv.Itoa(got.Port)),
		ip:      uaddr.IP,
		port:    got.Port,
		udp:     udp,
		metrics: m,
		packets: make(chan *memberlist.Packet, packetQueue),
		streams: make(chan net.Conn),
		dests:   map[string]*dest{},
		inbound: map[*quic.Conn]struct{}{},
	}
	if ip4 := t.ip.To4(); ip4 != nil {
		t.ip = ip4
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.tr = &quic.Transport{Conn: udp, StatelessResetKey: (*quic.StatelessResetKey)(transport.StatelessResetKey(base.Certificates[0], "gossip "+t.addr))}
	t.qconf = &quic.Config{
		HandshakeIdleTimeout:  handshakeTimeout,
		MaxIdleTimeout:        idleTimeout,
		EnableDatagrams:       true,
		MaxIncomingStreams:    maxStreamsPerCon,
		MaxIncomingUniStreams: maxUniPerCon,
	}
	check := func(cs tls.ConnectionState) error {
		if authorize == nil || len(cs.PeerCertificates) == 0 {
			return nil
		}
		if err := authorize(cs.PeerCertificates[0]); err != nil {
			return fmt.Errorf("gossip: member not authorized: %w", err)
		}
		return nil
	}
	t.client = transport.ClientTLS(base, ALPN, func(cs tls.ConnectionState) error {
		err := check(cs)
		if err != nil {
			t.refused(cs.ServerName, err)
		}
		return err
	})
	ln, err := t.tr.Listen(transport.ServerTLS(base, ALPN, check, t.refused), t.qconf)
	if err != nil {
		t.tr.Close()
		udp.Close()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	t.ln = ln
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func (t *quicTransport) refused(remote string, err error) {
	t.log.Warn("gossip: refused a connection", "remote", remote, "reason", err)
	t.metrics.refused.Inc()
}

// FinalAdvertiseAddr returns the listening IP and port: memberlist's
// BindAddr and AdvertiseAddr are not used with this transport.
func (t *quicTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, t.port, nil
}

// WriteTo queues a packet for addr and returns at once, as a UDP send
// would: memberlist calls it from its probe loop, which must not wait for
// a dial. A packet that finds the destination's queue full is dropped
// (counted), as a congested network would.
func (t *quicTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	d := t.dest(addr)
	if d == nil {
		return time.Time{}, errors.New("gossip: transport shut down")
	}
	buf := append([]byte(nil), b...) // memberlist reuses b
	select {
	case d.queue <- buf:
	default:
		t.metrics.dropped.WithLabelValues("send_queue_full").Inc()
	}
	return time.Now(), nil
}

// WriteToAddress is WriteTo; the node name is not needed to reach it.
func (t *quicTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh returns the packets received, from every connection.
func (t *quicTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh returns the streams other members opened.
func (t *quicTransport) StreamCh() <-chan net.Conn { return t.streams }

// DialTimeout opens a stream to addr, on its connection or a new one.
func (t *quicTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := t.dest(addr)
	if d == nil {
		return nil, errors.New("gossip: transport shut down")
	}
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	c, err := t.connect(ctx, d)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("gossip: opening a stream to %s: %w", addr, err)
	}
	return &streamConn{Stream: s, local: c.LocalAddr(), remote: c.RemoteAddr()}, nil
}

// DialAddressTimeout is DialTimeout.
func (t *quicTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// flush waits until every packet queued has been handed to QUIC, or ctx
// ends.
func (t *quicTransport) flush(ctx context.Context) {
	for {
		t.mu.Lock()
		queued := 0
		for _, d := range t.dests {
			queued += len(d.queue)
		}
		t.mu.Unlock()
		if queued == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Shutdown closes every connection and the socket, and waits for the
// transport's goroutines.
func (t *quicTransport) Shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel()
	var conns []*quic.Conn
	for c := range t.inbound {
		conns = append(conns, c)
	}
	dests := make([]*dest, 0, len(t.dests))
	for _, d := range t.dests {
		dests = append(dests, d)
	}
	t.mu.Unlock()
	t.ln.Close()
	for _, c := range conns {
		c.CloseWithError(0, "member leaving")
	}
	// After the lock above, connect closes what it dials (t.closed), so
	// these are the last outgoing connections.
	for _, d := range dests {
		d.mu.Lock()
		if d.conn != nil {
			d.conn.CloseWithError(0, "member leaving")
		}
		d.mu.Unlock()
	}
	t.tr.Close()
	err := t.udp.Close()
	t.wg.Wait()
	return err
}

// dest returns addr's destination, starting its sender; nil once shut
// down.
func (t *quicTransport) dest(addr string) *dest {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	d := t.dests[addr]
	if d == nil {
		d = &dest{addr: addr, queue: make(chan []byte, sendQueue)}
		t.dests[addr] = d
		t.wg.Add(1)
		go t.sender(d)
	}
	return d
}

// warm connects to addr in the background, so that the first packet to
// it, a probe with a deadline of its own, does not wait for a handshake.
func (t *quicTransport) warm(addr string) { t.dest(addr) }

// connect returns d's connection, dialling one if it has none or its last
// one ended; one dial at a time, which other callers wait for at most
// until their ctx ends (memberlist's fallback probe must not wait for the
// dial of a queued packet). After a failed dial it fails fast for
// dialBackoff.
func (t *quicTransport) connect(ctx context.Context, d *dest) (*quic.Conn, error) {
	for {
		d.mu.Lock()
		if d.conn != nil && d.conn.Context().Err() == nil {
			c := d.conn
			d.mu.Unlock()
			return c, nil
		}
		d.conn = nil
		if time.Now().Before(d.failUntil) {
			d.mu.Unlock()
			return nil, fmt.Errorf("gossip: %s unreachable (a dial failed within %v)", d.addr, dialBackoff)
		}
		if wait := d.dialing; wait != nil {
			d.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("gossip: dialling %s: %w", d.addr, ctx.Err())
			}
		}
		done := make(chan struct{})
		d.dialing = done
		d.mu.Unlock()
		c, err := t.dial(ctx, d.addr)
		t.mu.Lock() // t.mu before d.mu, as everywhere
		d.mu.Lock()
		d.dialing = nil
		close(done)
		switch {
		case err != nil:
			d.failUntil = time.Now().Add(dialBackoff)
		case t.closed:
			c.CloseWithError(0, "member leaving")
			err = errors.New("gossip: transport shut down")
		default:
			d.conn = c
			t.wg.Add(1)
			go t.serveConn(c, false)
		}
		d.mu.Unlock()
		t.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

func (t *quicTransport) dial(ctx context.Context, addr string) (*quic.Conn, error) {
	uaddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("gossip: address %q: %w", addr, err)
	}
	tc := t.client.Clone()
	tc.ServerName, _, _ = net.SplitHostPort(addr)
	c, err := t.tr.Dial(ctx, uaddr, tc, t.qconf)
	if err != nil {
		return nil, fmt.Errorf("gossip: dialling %s: %w", addr, err)
	}
	return c, nil
}

// sender sends d's packets in order, dialling as needed; a packet that
// cannot be sent is dropped (counted), as UDP would lose it. It exits
// after senderIdle without packets.
func (t *quicTransport) sender(d *dest) {
	defer t.wg.Done()
	// Connect at once: the first probe then does not wait for a handshake
	// (see warm).
	ctx, cancel := context.WithTimeout(t.ctx, t.qconf.HandshakeIdleTimeout)
	t.connect(ctx, d)
	cancel()
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-idle.C:
			t.mu.Lock()
			if len(d.queue) > 0 {
				t.mu.Unlock()
				idle.Reset(senderIdle)
				continue
			}
			delete(t.dests, d.addr)
			t.mu.Unlock()
			d.mu.Lock()
			if d.conn != nil {
				d.conn.CloseWithError(0, "idle")
			}
			d.mu.Unlock()
			return
		case b := <-d.queue:
			idle.Reset(senderIdle)
			t.send(d, b)
		}
	}
}

func (t *quicTransport) send(d *dest, b []byte) {
	ctx, cancel := context.WithTimeout(t.ctx, t.qconf.HandshakeIdleTimeout)
	defer cancel()
	c, err := t.connect(ctx, d)
	if err != nil {
		t.metrics.dropped.WithLabelValues("unreachable").Inc()
		t.log.Debug("gossip: packet dropped", "to", d.addr, "err", err)
		return
	}
	err = c.SendDatagram(b)
	var tooLarge *quic.DatagramTooLargeError
	if errors.As(err, &tooLarge) {
		// Rare: memberlist keeps packets under its UDPBufferSize, which
		// New sets below the datagram size. A stream carries it.
		err = t.sendUni(c, b)
	}
	if err != nil {
		t.metrics.dropped.WithLabelValues("send_failed").Inc()
		t.log.Debug("gossip: packet dropped", "to", d.addr, "err", err)
	}
}

func (t *quicTransport) sendUni(c *quic.Conn, b []byte) error {
	ctx, cancel := context.WithTimeout(t.ctx, uniWriteTimeout)
	defer cancel()
	s, err := c.OpenUniStreamSync(ctx)
	if err != nil {
		return err
	}
	s.SetWriteDeadline(time.Now().Add(uniWriteTimeout))
	if _, err := s.Write(b); err != nil {
		s.CancelWrite(0)
		return err
	}
	return s.Close()
}

func (t *quicTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept(t.ctx)
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.CloseWithError(0, "member leaving")
			return
		}
		t.inbound[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveConn(c, true)
	}
}

// serveConn takes packets (datagrams and unidirectional streams) and
// memberlist streams from one connection until it ends.
func (t *quicTransport) serveConn(c *quic.Conn, inbound bool) {
	defer t.wg.Done()
	if inbound {
		defer func() {
			t.mu.Lock()
			delete(t.inbound, c)
			t.mu.Unlock()
		}()
	}
	ctx := c.Context()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			s, err := c.AcceptStream(ctx)
			if err != nil {
				return
			}
			sc := &streamConn{Stream: s, local: c.LocalAddr(), remote: c.RemoteAddr()}
			select {
			case t.streams <- sc:
			case <-t.ctx.Done():
				sc.Close()
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			s, err := c.AcceptUniStream(ctx)
			if err != nil {
				return
			}
			s.SetReadDeadline(time.Now().Add(uniWriteTimeout))
			b, err := io.ReadAll(io.LimitReader(s, maxPacketSize+1))
			s.CancelRead(0)
			if err != nil || len(b) > maxPacketSize {
				t.metrics.dropped.WithLabelValues("bad_stream_packet").Inc()
				continue
			}
			t.deliver(b, c.RemoteAddr())
		}
	}()
	for {
		b, err := c.ReceiveDatagram(ctx)
		if err != nil {
			break
		}
		t.deliver(b, c.RemoteAddr())
	}
	wg.Wait()
}

// deliver hands a packet to memberlist, or drops it when memberlist is
// behind (counted), as a full socket buffer would.
func (t *quicTransport) deliver(b []byte, from net.Addr) {
	select {
	case t.packets <- &memberlist.Packet{Buf: b, From: from, Timestamp: time.Now()}:
	default:
		t.metrics.dropped.WithLabelValues("receive_queue_full").Inc()
	}
}

// streamConn is a QUIC stream as the net.Conn memberlist wants.
type streamConn struct {
	*quic.Stream
	local, remote net.Addr
}

func (s *streamConn) LocalAddr() net.Addr  { return s.local }
func (s *streamConn) RemoteAddr() net.Addr { return s.remote }

// Close ends both directions (a quic.Stream's Close ends only the
// sending one).
func (s *streamConn) Close() error {
	s.Stream.CancelRead(0)
	return s.Stream.Close()
}
