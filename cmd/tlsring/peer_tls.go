// peer_tls.go: `tlsring peer -tls-listen`, a Go TLS server in front of the
// member, its sessions resumed cluster-wide through the member with
// tlsglue: a way to try a member with real handshakes (openssl s_client
// -sess_out/-sess_in against two members), and the TLS servers the
// simulator's validation runs against (realcluster.go). Each connection gets
// a handshake, one byte '.' and a close, as the demo's servers do.

package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/tlsglue"
)

// tlsFrontFlags are the peer's -tls-* flags, as registered.
type tlsFrontFlags struct {
	listen   *string
	cert     *string
	key      *string
	deadline *time.Duration
}

// tlsFrontConfig is the checked configuration; listen "" = off.
type tlsFrontConfig struct {
	listen    string
	cert, key string // PEM files of the server certificate and key
	deadline  time.Duration
}

func addTLSFrontFlags(fs *flag.FlagSet) *tlsFrontFlags {
	return &tlsFrontFlags{
		listen: fs.String("tls-listen", "", "TCP host:port to serve TLS 1.2 and 1.3 on, resuming sessions cluster-wide through this member (tlsglue), to try the ring with real handshakes: each connection gets one byte '.' (default: none)"),
		cert:   fs.String("tls-cert", "", "PEM `file` with the -tls-listen server certificate (default: -cert)"),
		key:    fs.String("tls-key", "", "PEM `file` with the -tls-listen server key (default: -key)"),
		deadline: fs.Duration("tls-deadline", 0, "bound on one session lookup of the -tls-listen server (0 = tlsglue's default, "+
			tlsglue.DefaultDeadline.String()+")"),
	}
}

// check validates the flags; memberCert and memberKey are the -cert and
// -key defaults.
func (f *tlsFrontFlags) check(memberCert, memberKey string) (tlsFrontConfig, error) {
	c := tlsFrontConfig{listen: *f.listen, cert: *f.cert, key: *f.key, deadline: *f.deadline}
	if c.listen == "" {
		if c.cert != "" || c.key != "" {
			return c, usagef("-tls-cert and -tls-key need -tls-listen")
		}
		return c, nil
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return c, usagef("-tls-listen %q: want host:port", c.listen)
	}
	if (c.cert == "") != (c.key == "") {
		return c, usagef("-tls-cert and -tls-key go together (or neither: the member's -cert and -key)")
	}
	if c.cert == "" {
		c.cert, c.key = memberCert, memberKey
	}
	if c.deadline < 0 {
		return c, usagef("-tls-deadline %v: want 0 (the default) or a positive duration", c.deadline)
	}
	return c, nil
}

// startTLSFront starts the -tls-listen server on p. It returns its
// address ("" when off) and an idempotent stop that closes the listener,
// waits for open connections and flushes queued session writes.
func startTLSFront(c tlsFrontConfig, p *peer.Peer, reg prometheus.Registerer, log *slog.Logger) (addr string, stop func(), err error) {
	if c.listen == "" {
		return "", func() {}, nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return "", nil, fmt.Errorf("-tls-cert %s, -tls-key %s: %w", c.cert, c.key, err)
	}
	m := tlsglue.NewMetrics(nil)
	if err := reg.Register(m); err != nil {
		return "", nil, err
	}
	g, err := tlsglue.New(p, tlsglue.Options{Deadline: c.deadline, Metrics: m, Logger: log})
	if err != nil {
		return "", nil, err
	}
	conf := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if err := g.Install(conf); err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		g.Close()
		return "", nil, fmt.Errorf("-tls-listen %s: %w", c.listen, err)
	}
	s := serveTLS(l, conf)
	addr = l.Addr().String()
	log.Info("TLS server serving", "tls_listen", addr)
	var once sync.Once
	return addr, func() {
		once.Do(func() {
			s.close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				log.Warn("TLS server: session writes not all stored", "err", err)
			}
		})
	}, nil
}
