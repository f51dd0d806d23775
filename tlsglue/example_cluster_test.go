// example_cluster_test.go: README's library example, run for real: two ring
// members on loopback, a TLS server on each, and a session issued by one
// resumed by the other on the first try.

package tlsglue_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/tlsglue"
	"github.com/tlsring/tlsring/transport"
	"github.com/tlsring/tlsring/transport/transporttest"
)

// Example_twoServers is what a Go TLS server adds to use the ring: a ring
// member (peer.New) with the certificates `tlsring certs` made, loaded by
// transport.LoadMemberTLS, and one tlsglue.Install on the server's
// tls.Config. Two such servers on loopback, with a member each, resume
// each other's sessions.
//
// WarmUp waits until this member has a connection to every other member.
// peer.New starts one in the background, but a lookup that must dial a
// member first can outlast the 3 ms lookup deadline and become a full
// handshake: call WarmUp once the other members run, before serving. It
// returns an error naming the members that did not answer by ctx's end
// (they are probed in the background and used once they answer).
//
// Sessions are bound to the server name (SNI) the client sent: a client
// resumes on any server of the fleet as long as it asks for the same name.
func Example_twoServers() {
	// Files as `tlsring certs -dir DIR -name m1 -hosts 127.0.0.1` (and -name
	// m2) writes them; writeCerts makes them in a temporary directory.
	dir, addrs := writeCerts("m1", "m2")
	defer os.RemoveAll(dir)

	var members []*peer.Peer
	var servers []net.Listener
	for i, name := range []string{"m1", "m2"} {
		// The member's certificate and the cluster CA, checked now as the
		// other members will check them.
		clusterTLS, err := transport.LoadMemberTLS(
			filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"),
			filepath.Join(dir, "ca.pem"), addrs[i])
		if err != nil {
			log.Fatal(err)
		}
		member, err := peer.New(peer.Config{
			Self:    addrs[i], // this member's QUIC address, as listed in Members
			Members: addrs,    // every member, this one included
			TLS:     clusterTLS,
			Logger:  quiet,
		})
		if err != nil {
			log.Fatal(err)
		}
		defer member.Close()
		members = append(members, member)

		serverTLS := &tls.Config{Certificates: []tls.Certificate{serverCert}}
		if err := tlsglue.Install(serverTLS, member, tlsglue.Options{}); err != nil {
			log.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS) // this server now resumes the others' sessions
		if err != nil {
			log.Fatal(err)
		}
		defer ln.Close()
		servers = append(servers, ln)
	}
	for i, m := range members { // every member runs: connect them, then serve
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.WarmUp(ctx); err != nil {
			log.Fatal(err)
		}
		cancel()
		go serveHello(servers[i])
	}

	client := &tls.Config{
		RootCAs:            serverPool,
		ServerName:         "example.test", // the same name to every server
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}
	fmt.Println("resumed:", hello(servers[0].Addr().String(), client))
	// Session writes are asynchronous (they never hold a handshake); a
	// client comes back later, but this one returns at once, so wait
	// until both members hold their copy.
	waitStored(members)
	fmt.Println("resumed:", hello(servers[1].Addr().String(), client))
	// Output:
	// resumed: false
	// resumed: true
}

// waitStored waits (up to 10 s) until every member holds an entry.
func waitStored(members []*peer.Peer) {
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range members {
		for m.LocalStats().Entries == 0 {
			if time.Now().After(deadline) {
				log.Fatalf("member %s holds no session after 10 s", m.Self())
			}
			time.Sleep(time.Millisecond)
		}
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// writeCerts stands in for `tlsring certs`: a cluster CA and a member
// certificate for 127.0.0.1 per name, in a new temporary directory, and a
// free loopback UDP address per name.
func writeCerts(names ...string) (dir string, addrs []string) {
	dir, err := os.MkdirTemp("", "tlsring-example")
	if err != nil {
		log.Fatal(err)
	}
	ca, err := transporttest.NewCAErr()
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range names {
		if err := ca.WriteMemberFiles(dir, n, "127.0.0.1"); err != nil {
			log.Fatal(err)
		}
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close() // held until all are picked: distinct ports
		addrs = append(addrs, c.LocalAddr().String())
	}
	return dir, addrs
}

// serverCert is the TLS servers' own certificate for example.test, from a
// CA of its own that clients trust (serverPool).
var serverCert, serverPool = func() (tls.Certificate, *x509.CertPool) {
	ca, err := transporttest.NewCAErr()
	if err != nil {
		log.Fatal(err)
	}
	c, err := ca.MemberCertErr("example.test")
	if err != nil {
		log.Fatal(err)
	}
	return c, ca.Pool
}()

// serveHello answers every connection with "hello" and closes it.
func serveHello(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.WriteString(c, "hello")
		}()
	}
}

// hello connects, reads the greeting (and with it the session ticket) and
// reports whether the handshake resumed a session.
func hello(addr string, cfg *tls.Config) bool {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadAll(c); err != nil {
		log.Fatal(err)
	}
	return c.ConnectionState().DidResume
}
