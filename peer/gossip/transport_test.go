// The gossip transport alone, over real QUIC on loopback: packets arrive
// as datagrams, with the sender's gossip address; a packet too large for a
// datagram arrives whole over a stream; streams carry bytes both ways; a
// party with another CA's certificate gets nothing through either way.

package gossip

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tlsring/tlsring/transport/transporttest"
)

func listenT(t *testing.T, ca *transporttest.CA) *quicTransport {
	t.Helper()
	tr, err := listen("127.0.0.1:0", ca.MemberTLS(t, "127.0.0.1"), nil, quiet, newMetrics("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown() })
	return tr
}

// receive waits for a packet on tr.
func receive(t *testing.T, tr *quicTransport) ([]byte, string) {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p.Buf, p.From.String()
	case <-time.After(10 * time.Second):
		t.Fatal("no packet within 10s")
		return nil, ""
	}
}

func TestTransportPacketsAndStreams(t *testing.T) {
	ca := transporttest.NewCA(t)
	a, b := listenT(t, ca), listenT(t, ca)

	small := []byte("ping")
	if _, err := a.WriteTo(small, b.addr); err != nil {
		t.Fatal(err)
	}
	got, from := receive(t, b)
	if !bytes.Equal(got, small) || from != a.addr {
		t.Fatalf("got %q from %s, want %q from %s", got, from, small, a.addr)
	}

	large := bytes.Repeat([]byte("x"), 20000) // far over any datagram
	if _, err := a.WriteTo(large, b.addr); err != nil {
		t.Fatal(err)
	}
	if got, _ := receive(t, b); !bytes.Equal(got, large) {
		t.Fatalf("large packet: got %d bytes, want %d", len(got), len(large))
	}

	c, err := a.DialTimeout(b.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("push")); err != nil {
		t.Fatal(err)
	}
	var s io.ReadWriteCloser
	select {
	case s = <-b.StreamCh():
	case <-time.After(10 * time.Second):
		t.Fatal("no stream within 10s")
	}
	defer s.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "push" {
		t.Fatalf("stream read %q, %v", buf, err)
	}
	if _, err := s.Write([]byte("pull")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pull" {
		t.Fatalf("stream answer %q, %v", buf, err)
	}
}

func TestTransportRefusesOtherCA(t *testing.T) {
	ca := transporttest.NewCA(t)
	member := listenT(t, ca)
	outsider := listenT(t, transporttest.NewCA(t))
	if _, err := outsider.DialTimeout(member.addr, 2*time.Second); err == nil {
		t.Fatal("an outsider opened a stream to a member")
	}
	if _, err := member.DialTimeout(outsider.addr, 2*time.Second); err == nil {
		t.Fatal("a member opened a stream to an outsider")
	}
	outsider.WriteTo([]byte("alive: evil"), member.addr)
	waitFor(t, 10*time.Second, "the outsider's packet to be dropped", func() (bool, string) {
		n := testutil.ToFloat64(outsider.metrics.dropped.WithLabelValues("unreachable"))
		return n >= 1, ""
	})
	select {
	case p := <-member.PacketCh():
		t.Fatalf("the member received %q from an outsider", p.Buf)
	default:
	}
}
