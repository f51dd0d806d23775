// peer.go: `tlsring peer`, a standalone ring member for production: the
// QUIC member itself, the admin server (/metrics, /healthz, /readyz), the
// optional memcached face for non-Go TLS terminators, and a clean shutdown
// on SIGTERM or SIGINT.

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/tlsring/tlsring/cmd/internal/memcache"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/peer/membership"
	"github.com/tlsring/tlsring/peer/store"
	"github.com/tlsring/tlsring/transport"
)

// peerConfig is the parsed and checked configuration of `tlsring peer`.
type peerConfig struct {
	listen           string
	members          []string
	membersFile      string           // "" = static -members; else re-read on SIGHUP
	membership       membershipConfig // membership.go: the source and its damping
	deny             *denyFile        // nil = no -deny-file; else re-read on SIGHUP
	tls              *tls.Config
	maxBytes         int64
	admin            string
	memcached        string // "" = off; "unix:/path" or host:port
	memcachedTTL     time.Duration
	memcachedTimeout time.Duration
	memcachedMode    os.FileMode // of a unix: socket
	memcachedConns   int
	memcachedPerSrc  int // 0 = half of memcachedConns
	leaveTimeout     time.Duration
	log              *slog.Logger
	ticketKeys       ticketKeyConfig // ticketkeys.go
	tlsFront         tlsFrontConfig  // peer_tls.go
}

// parsePeerFlags parses and checks the flags and environment of `tlsring
// peer`, loading the certificates. Logs go to stderr.
func parsePeerFlags(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) (*peerConfig, error) {
	fs := newFlagSet("peer", "", stdout, stderr)
	listen := fs.String("listen", "", "UDP host:port to serve the peer protocol (QUIC) on; also this member's name in the ring, as other members dial it (required)")
	members := fs.String("members", "", "comma-separated host:port of every ring member, this one included (default: -listen alone)")
	membersFile := fs.String("members-file", "", "`file` listing every ring member instead of -members (host:port, comma- or newline-separated, # starts a comment); re-read on SIGHUP, so membership changes without a restart")
	mFlags := addMembershipFlags(fs) // membership.go
	cert := fs.String("cert", "", "PEM file with this member's certificate, valid for the host of -listen (required)")
	key := fs.String("key", "", "PEM file with this member's private key (required)")
	ca := fs.String("ca", "", "PEM file with the cluster CA that signs every member's certificate (required)")
	denyPath := fs.String("deny-file", "", "`file` of retired member certificates to refuse although the CA signed them: SHA-256 fingerprints (as openssl x509 -fingerprint -sha256 prints them) or serial:HEX, one a line; re-read on SIGHUP")
	maxBytes := byteSize(store.DefaultMaxBytes)
	fs.Var(&maxBytes, "max-bytes", "`size` bound on the local store: keys, values and per-entry overhead, e.g. 256MiB")
	admin := fs.String("admin", "", "TCP host:port for the admin HTTP server with /metrics, /healthz (liveness) and /readyz (readiness: state transfer done, ring reachable) (default: none)")
	memcached := fs.String("memcached", "", "serve the memcached text protocol on this TCP host:port or unix:/path, for non-Go TLS terminators (default: none). It has no authentication: keep it on loopback or a Unix socket")
	memMode := fileMode(memcache.DefaultSocketMode)
	fs.Var(&memMode, "memcached-socket-mode", "permission bits, in octal, of the -memcached unix: socket; connecting needs write permission")
	memConns := fs.Int("memcached-max-conns", memcache.DefaultMaxConns, "bound on open memcached-face connections; when reached, the longest-idle connection of the busiest source makes room")
	memPerSrc := fs.Int("memcached-max-conns-per-source", 0, "bound on memcached-face connections from one IPv4 address or IPv6 /64 (default: half of -memcached-max-conns)")
	memTTL := fs.Duration("memcached-default-ttl", memcache.DefaultTTL, "lifetime of values set through the memcached face with exptime 0")
	memTimeout := fs.Duration("memcached-timeout", memcache.DefaultTimeout, "bound on the ring operations of one memcached command")
	leaveTimeout := fs.Duration("leave-timeout", 10*time.Second, "on SIGTERM or SIGINT, how long to spend delivering delayed writes and finishing a rebalance before closing")
	tkFlags := addTicketKeyFlags(fs) // ticketkeys.go
	tfFlags := addTLSFrontFlags(fs)  // peer_tls.go
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: tlsring peer -listen host:port -members a,b,c -cert FILE -key FILE -ca FILE [flags]

Runs one member of a tlsring cluster: it keeps its share of the cluster's
sessions (each on its owner and the owner's ring successor), serves other
members over QUIC with mutual TLS (certificates from the cluster CA, see
'tlsring certs'), serves /metrics, /healthz and /readyz on -admin, and,
with -memcached, the memcached text protocol (get, gets, set, delete,
version, quit; flags must be 0) for TLS terminators such as Apache's
mod_socache_memcache. On start it pulls the entries it holds a copy of
from the other members (/readyz says when that is done). SIGTERM or
SIGINT delivers delayed writes (within -leave-timeout) and exits; a second
signal exits at once. With -members-file, SIGHUP re-reads the member list
and moves entries to their new owners; a list without this member is
refused, as at start (a member leaves by SIGTERM). With -membership dns,
the members are what -dns-name resolves to, asked every -dns-interval.
With -membership gossip, members find each other through -gossip-seeds
(hashicorp/memberlist over QUIC with mutual TLS on -gossip-listen), and
gossip alone judges which members are down.
A member gone from its source stays in the ring for -membership-grace.

%s

Flags:
`, envHelp(fs))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	if err := applyEnv(fs, lookupEnv); err != nil {
		return nil, err
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return nil, err
	}
	cfg := &peerConfig{
		listen: *listen, maxBytes: int64(maxBytes), admin: *admin, memcached: *memcached,
		memcachedTTL: *memTTL, memcachedTimeout: *memTimeout, leaveTimeout: *leaveTimeout, log: log,
		memcachedMode: os.FileMode(memMode), memcachedConns: *memConns, memcachedPerSrc: *memPerSrc,
	}
	if cfg.listen == "" {
		return nil, usagef("-listen is required (host:port; or set %s)", envName("listen"))
	}
	if err := checkMemberAddr(cfg.listen); err != nil {
		return nil, usagef("-listen %q: %v", cfg.listen, err)
	}
	if err := mFlags.check(cfg, *members, *membersFile); err != nil {
		return nil, err
	}
	switch {
	case *cert == "":
		return nil, usagef("-cert is required (this member's certificate; 'tlsring certs' makes one)")
	case *key == "":
		return nil, usagef("-key is required (this member's private key)")
	case *ca == "":
		return nil, usagef("-ca is required (the cluster CA certificate)")
	case cfg.maxBytes <= 0:
		return nil, usagef("-max-bytes %d: want a positive size such as 64MiB (the default)", cfg.maxBytes)
	case cfg.memcachedTTL <= 0 || cfg.memcachedTTL > peer.MaxTTL:
		return nil, usagef("-memcached-default-ttl %v: want a duration between 1s and %v", cfg.memcachedTTL, peer.MaxTTL)
	case cfg.memcachedTimeout <= 0:
		return nil, usagef("-memcached-timeout %v: want a positive duration", cfg.memcachedTimeout)
	case cfg.memcachedConns < 1:
		return nil, usagef("-memcached-max-conns %d: want 1 or more", cfg.memcachedConns)
	case cfg.memcachedPerSrc < 0:
		return nil, usagef("-memcached-max-conns-per-source %d: want 0 (half of -memcached-max-conns) or more", cfg.memcachedPerSrc)
	case cfg.leaveTimeout < 0:
		return nil, usagef("-leave-timeout %v: want a duration of 0 or more", cfg.leaveTimeout)
	}
	if cfg.memcached != "" && !strings.HasPrefix(cfg.memcached, "unix:") {
		if _, _, err := net.SplitHostPort(cfg.memcached); err != nil {
			return nil, usagef("-memcached %q: want host:port or unix:/path", cfg.memcached)
		}
	}
	if cfg.ticketKeys, err = tkFlags.check(); err != nil {
		return nil, err
	}
	if cfg.tlsFront, err = tfFlags.check(*cert, *key); err != nil {
		return nil, err
	}
	if cfg.tls, err = loadMemberTLS(*cert, *key, *ca, cfg.listen); err != nil {
		return nil, err
	}
	if *denyPath != "" {
		l, err := readDenyFile(*denyPath)
		if err != nil {
			return nil, usagef("-deny-file %s: %v", *denyPath, err)
		}
		cfg.deny = &denyFile{path: *denyPath}
		cfg.deny.list.Store(l)
	}
	return cfg, nil
}

// checkMembers checks every address of a member list and that it includes
// this member (spelled as in -listen); source names the list in errors.
func checkMembers(source string, members []string, listen string) error {
	found := false
	for _, m := range members {
		if err := checkMemberAddr(m); err != nil {
			return usagef("%s %q: %v", source, m, err)
		}
		found = found || m == listen
	}
	if !found {
		return usagef("%s %s does not include -listen %s (list every member, this one included, spelled as in its -listen)", source, strings.Join(members, ","), listen)
	}
	return nil
}

// readSmallFile reads a configuration file that SIGHUP may re-read
// (members, deny list), refusing one over 1 MiB.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(data) > 1<<20 {
		return nil, errors.New("larger than 1 MiB")
	}
	return data, nil
}

// checkMemberAddr checks that a member address is host:port with a port
// other than 0 (the address is the member's name: it must be dialable).
var checkMemberAddr = membership.CheckAddr

// loadMemberTLS reads the member's certificate, key and cluster CA, and
// checks that the certificate is signed by the CA and valid for the host
// of listen (other members verify both).
func loadMemberTLS(certFile, keyFile, caFile, listen string) (*tls.Config, error) {
	cfg, err := transport.LoadMemberTLS(certFile, keyFile, caFile, listen)
	if err != nil {
		return nil, fmt.Errorf("-cert, -key, -ca: %w", err)
	}
	return cfg, nil
}

func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parsePeerFlags(args, os.LookupEnv, stdout, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return servePeer(ctx, cfg, stop, nil)
}

// servePeer runs the member until ctx is done, then drains and closes it.
// stopSignals restores the default signal handling once draining starts,
// so a second signal ends the process. ready, if not nil, receives the
// admin address ("" without one) once everything serves.
func servePeer(ctx context.Context, cfg *peerConfig, stopSignals func(), ready func(admin, memcached string)) (err error) {
	log := cfg.log
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	var authorize func(*x509.Certificate) error
	if cfg.deny != nil {
		authorize = cfg.deny.authorize
	}
	g, err := startGossip(ctx, cfg, authorize, reg, log) // gossip.go; nil without -membership gossip
	if err != nil {
		return err
	}
	if g != nil {
		defer g.Close()
		cfg.membership.g = g
		cfg.members = g.Members()
	}
	cfg.members = firstMembers(ctx, cfg, log) // membership.go
	p, err := peer.New(peer.Config{
		ExternalLiveness: g != nil,
		Authorize:        authorize,
		Self:             cfg.listen,
		Members:          cfg.members,
		TLS:              cfg.tls,
		MaxBytes:         cfg.maxBytes,
		Logger:           log,
		Registerer:       reg, // the member's and its transport's metrics
	})
	if err != nil {
		return err
	}
	peerClosed := false
	defer func() {
		if !peerClosed {
			p.Close()
		}
	}()
	stopTicketKeys, err := startTicketKeys(cfg.ticketKeys, p, reg, log) // ticketkeys.go
	if err != nil {
		return err
	}
	defer stopTicketKeys()
	_, stopTLSFront, err := startTLSFront(cfg.tlsFront, p, reg, log) // peer_tls.go
	if err != nil {
		return err
	}
	defer stopTLSFront()

	var admin *adminServer
	if cfg.admin != "" {
		ready := func() (bool, string) {
			rd := p.Readiness()
			return rd.Ready, rd.String()
		}
		if admin, err = startAdmin(cfg.admin, reg, log, ready); err != nil {
			return fmt.Errorf("-admin %s: %w", cfg.admin, err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			admin.shutdown(sctx)
		}()
	}

	var mc *memcache.Server
	mcDone := make(chan error, 1)
	mcAddr := ""
	if cfg.memcached != "" {
		l, err := memcache.Listen(cfg.memcached, memcache.ListenConfig{SocketMode: cfg.memcachedMode, Logger: log})
		if err != nil {
			return fmt.Errorf("-memcached %s: %w", cfg.memcached, err)
		}
		mcAddr = l.Addr().String()
		mcMetrics := memcache.NewMetrics(prometheus.Labels{"member": cfg.listen})
		reg.MustRegister(mcMetrics)
		mc = &memcache.Server{
			Backend:    p,
			DefaultTTL: cfg.memcachedTTL,
			MaxTTL:     peer.MaxTTL,
			// The ring bounds values at peer.MaxValueSize.
			MaxValueSize: peer.MaxValueSize,
			Timeout:      cfg.memcachedTimeout,
			Version:      "tlsring",
			Logger:       log,
			Metrics:      mcMetrics,

			MaxConns:          cfg.memcachedConns,
			MaxConnsPerSource: cfg.memcachedPerSrc,
		}
		go func() { mcDone <- mc.Serve(l) }()
		defer mc.Close()
	}

	adminAddr := ""
	if admin != nil {
		adminAddr = admin.Addr()
	}
	log.Info("tlsring peer serving", "listen", cfg.listen, "members", cfg.members, "max_bytes", cfg.maxBytes,
		"admin", adminAddr, "memcached", mcAddr)
	if ready != nil {
		ready(adminAddr, mcAddr)
	}

	mctx, stopMembership := context.WithCancel(ctx)
	defer stopMembership()
	membershipDone, reloadMembers, err := startMembership(mctx, cfg, p, reg, log) // membership.go
	if err != nil {
		return err
	}
	var serveErr error
	var hup chan os.Signal // nil (never ready) without -members-file or -deny-file
	if cfg.membersFile != "" || cfg.deny != nil {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
serve:
	for {
		select {
		case <-ctx.Done():
			break serve
		case err := <-mcDone:
			if err != nil && !errors.Is(err, memcache.ErrServerClosed) {
				return fmt.Errorf("memcached face: %w", err)
			}
			break serve
		case err := <-membershipDone:
			serveErr = err
			membershipDone = nil
			break serve
		case <-hup:
			if cfg.deny != nil {
				reloadDeny(p, cfg.deny, log)
			}
			if cfg.membersFile != "" {
				reloadMembers()
			}
		}
	}
	stopMembership()
	if membershipDone != nil {
		<-membershipDone
	}
	if stopSignals != nil {
		stopSignals()
	}
	if g != nil {
		// The others drop this member from gossip at once (reads go to
		// its replicas) while it delivers its delayed writes.
		gctx, cancel := context.WithTimeout(context.Background(), min(cfg.leaveTimeout, 5*time.Second))
		if err := g.Leave(gctx); err != nil {
			log.Warn("gossip: leaving", "err", err)
		}
		cancel()
	}
	log.Info("shutting down: delivering delayed writes", "timeout", cfg.leaveTimeout)
	if admin != nil {
		admin.setDraining("draining")
	}
	if mc != nil {
		mc.Close()
	}
	stopTLSFront()
	lctx, cancel := context.WithTimeout(context.Background(), cfg.leaveTimeout)
	leaveErr := p.Leave(lctx)
	cancel()
	if leaveErr != nil {
		log.Warn("delayed writes not all delivered", "err", leaveErr)
	}
	peerClosed = true
	if err := p.Close(); err != nil {
		log.Warn("closing the member", "err", err)
	}
	log.Info("tlsring peer stopped")
	return serveErr
}

// reloadDeny re-reads -deny-file and closes connections of members whose
// certificates it now refuses; a file that does not parse is logged and the
// current list kept.
func reloadDeny(p *peer.Peer, d *denyFile, log *slog.Logger) {
	l, err := readDenyFile(d.path)
	if err != nil {
		log.Error("SIGHUP: keeping the current deny list", "deny_file", d.path, "err", err)
		return
	}
	d.list.Store(l)
	log.Info("SIGHUP: applied the deny list", "deny_file", d.path, "certificates", len(l.fingerprints)+len(l.serials))
	p.Reauthorize()
}
