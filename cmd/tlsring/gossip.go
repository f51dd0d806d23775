// gossip.go: `tlsring peer -membership gossip`: the gossip flags, and the
// gossip member started before the ring member (it finds the ring's
// members), whose liveness then judges which members are down.

package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/peer/gossip"
	"github.com/tlsring/tlsring/peer/membership"
)

// gossipJoinWait bounds how long a member waits at start for a seed to
// answer before it starts alone (it goes on trying to join).
const gossipJoinWait = 5 * time.Second

// gossipFlags are the flags of -membership gossip.
type gossipFlags struct {
	listen *string
	seeds  *string
	probe  *time.Duration
}

func addGossipFlags(fs *flag.FlagSet) *gossipFlags {
	return &gossipFlags{
		listen: fs.String("gossip-listen", "", "with -membership gossip: UDP ip:port to gossip on (QUIC with mutual TLS, the same certificate and CA as -listen); other members reach this one there (default: the host of -listen, its port plus one)"),
		seeds:  fs.String("gossip-seeds", "", "with -membership gossip: comma-separated -gossip-listen addresses of members to join through (this member's own may be among them); one that answers is enough; none: this member starts a cluster"),
		probe:  fs.Duration("gossip-probe-interval", gossip.DefaultProbeInterval, "with -membership gossip: how often each member probes another; a failed member is declared dead after a few intervals (more in larger clusters)"),
	}
}

// check checks the gossip flags (given: the flags set on the command line
// or by environment) and returns the gossip configuration, without TLS.
func (f *gossipFlags) check(mode string, given map[string]bool, listen string) (*gossip.Config, error) {
	if mode != "gossip" {
		for _, name := range []string{"gossip-listen", "gossip-seeds", "gossip-probe-interval"} {
			if given[name] {
				return nil, usagef("-%s needs -membership gossip", name)
			}
		}
		return nil, nil
	}
	gl := *f.listen
	if gl == "" {
		host, port, _ := net.SplitHostPort(listen)
		n, _ := strconv.Atoi(port)
		gl = net.JoinHostPort(host, strconv.Itoa(n+1))
	}
	host, _, err := net.SplitHostPort(gl)
	if err != nil || checkMemberAddr(gl) != nil || net.ParseIP(host) == nil || net.ParseIP(host).IsUnspecified() {
		return nil, usagef("-gossip-listen %q: want ip:port with the IP other members reach this one at (not a wildcard, not a name)", gl)
	}
	seeds := splitList(*f.seeds)
	for _, s := range seeds {
		if err := checkMemberAddr(s); err != nil {
			return nil, usagef("-gossip-seeds %q: %v", s, err)
		}
	}
	if *f.probe <= 0 {
		return nil, usagef("-gossip-probe-interval %v: want a positive duration", *f.probe)
	}
	return &gossip.Config{Listen: gl, Member: listen, Seeds: seeds, ProbeInterval: *f.probe}, nil
}

// startGossip starts the gossip member of -membership gossip (nil
// otherwise) and waits up to gossipJoinWait for a seed to answer, so that
// the ring member starts with the cluster's members rather than alone.
func startGossip(ctx context.Context, cfg *peerConfig, authorize func(*x509.Certificate) error, reg prometheus.Registerer, log *slog.Logger) (*gossip.Gossip, error) {
	gc := cfg.membership.gossip
	if gc == nil {
		return nil, nil
	}
	c := *gc
	c.TLS, c.Authorize, c.Logger, c.Registerer = cfg.tls, authorize, log, reg
	g, err := gossip.New(c)
	if err != nil {
		return nil, fmt.Errorf("-gossip-listen %s: %w", c.Listen, err)
	}
	t := time.NewTimer(gossipJoinWait)
	defer t.Stop()
	select {
	case <-g.Joined():
		log.Info("gossip: starting with the members gossip knows", "members", strings.Join(g.Members(), ","))
	case <-t.C:
		log.Warn("gossip: no seed answered yet; starting alone and joining when one does", "seeds", c.Seeds, "waited", gossipJoinWait)
	case <-ctx.Done():
	}
	return g, nil
}

// countSuspicions passes gossip's liveness on to the peer, counting each
// suspicion in tlsring_membership_suspicions_total.
type countSuspicions struct {
	membership.Liveness
	metrics *membership.Metrics
}

func (c countSuspicions) MemberDown(member string, reason error) {
	if errors.Is(reason, gossip.ErrSuspect) {
		c.metrics.Suspicion()
	}
	c.Liveness.MemberDown(member, reason)
}
