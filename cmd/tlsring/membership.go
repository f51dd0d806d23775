// membership.go: `tlsring peer -membership static|file|dns|gossip`: which
// source the ring's members come from, the flags of each, the first member
// list (read before the member starts), and the goroutine that follows the
// source with damping (peer/membership).

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/peer/gossip"
	"github.com/tlsring/tlsring/peer/membership"
)

// membershipConfig is the checked membership configuration.
type membershipConfig struct {
	mode  string          // static, file, dns or gossip
	dns   *membership.DNS // with -membership dns
	grace time.Duration   // negative: none
	// gossip is the configuration of -membership gossip (gossip.go),
	// without TLS; g the member started from it (startGossip).
	gossip *gossip.Config
	g      *gossip.Gossip
}

// membershipFlags are the flags of the membership sources; -members and
// -members-file stay in peer.go.
type membershipFlags struct {
	fs          *flag.FlagSet
	mode        *string
	dnsName     *string
	dnsServer   *string
	dnsInterval *time.Duration
	dnsTimeout  *time.Duration
	grace       *time.Duration
	gossip      *gossipFlags // gossip.go
}

func addMembershipFlags(fs *flag.FlagSet) *membershipFlags {
	return &membershipFlags{
		fs:          fs,
		mode:        fs.String("membership", "", "where the ring's members come from: static (-members), file (-members-file, re-read on SIGHUP), dns (-dns-name, polled) or gossip (default: file with -members-file, else static)"),
		dnsName:     fs.String("dns-name", "", "with -membership dns: the name whose SRV records list the members (e.g. _quic._udp.tlsring.default.svc.cluster.local), or name:port whose A and AAAA records do, each address with that port; fully qualified (no search domains)"),
		dnsServer:   fs.String("dns-server", "", "with -membership dns: the resolver's host:port (default: the first nameserver of /etc/resolv.conf)"),
		dnsInterval: fs.Duration("dns-interval", membership.DefaultDNSInterval, "with -membership dns: how often to ask (jittered by a tenth)"),
		dnsTimeout:  fs.Duration("dns-timeout", membership.DefaultDNSTimeout, "with -membership dns: bound on one query; a resolver that does not answer in time keeps the last good membership"),
		gossip:      addGossipFlags(fs),
		grace:       fs.Duration("membership-grace", 0, fmt.Sprintf("how long a member gone from the membership source stays in the ring, reported down (reads go to its replica), before its ranges move; one back within it moves nothing (default %v with dns and gossip; none with static and file, whose edits are meant)", membership.DefaultGrace)),
	}
}

// check checks the membership flags against -members and -members-file
// and fills in cfg.members (but for dns, whose list comes at start),
// cfg.membersFile and cfg.membership.
func (f *membershipFlags) check(cfg *peerConfig, members, membersFile string) error {
	mc := membershipConfig{mode: *f.mode}
	if mc.mode == "" {
		mc.mode = "static"
		if membersFile != "" {
			mc.mode = "file"
		}
	}
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for _, name := range []string{"dns-name", "dns-server", "dns-interval", "dns-timeout"} {
		if given[name] && mc.mode != "dns" {
			return usagef("-%s needs -membership dns", name)
		}
	}
	cfg.members = splitList(members)
	switch mc.mode {
	case "static":
		if membersFile != "" {
			return usagef("-members-file needs -membership file (or no -membership)")
		}
	case "file":
		if membersFile == "" {
			return usagef("-membership file needs -members-file")
		}
		if len(cfg.members) > 0 {
			return usagef("-members and -members-file are exclusive: give the list one way")
		}
		cfg.membersFile = membersFile
		var err error
		if cfg.members, err = membership.ReadMembersFile(membersFile); err != nil {
			return usagef("-members-file %s: %v", membersFile, err)
		}
	case "dns":
		if len(cfg.members) > 0 || membersFile != "" {
			return usagef("-membership dns takes its members from -dns-name: drop -members and -members-file")
		}
		if *f.dnsName == "" {
			return usagef("-membership dns needs -dns-name (SRV name, or name:port for A and AAAA records)")
		}
		if *f.dnsInterval <= 0 || *f.dnsTimeout <= 0 {
			return usagef("-dns-interval and -dns-timeout: want positive durations")
		}
		mc.dns = &membership.DNS{Name: *f.dnsName, Server: *f.dnsServer, Interval: *f.dnsInterval, Timeout: *f.dnsTimeout, Logger: cfg.log}
		if err := mc.dns.Check(); err != nil {
			return usagef("-dns-name %s, -dns-server %s: %v", *f.dnsName, *f.dnsServer, strings.TrimPrefix(err.Error(), "membership: "))
		}
		cfg.members = []string{cfg.listen} // until the first answer, at start
	case "gossip":
		if len(cfg.members) > 0 || membersFile != "" {
			return usagef("-membership gossip finds the members itself (-gossip-seeds): drop -members and -members-file")
		}
		cfg.members = []string{cfg.listen} // until gossip answers, at start
	default:
		return usagef("-membership %q: want static, file, dns or gossip", mc.mode)
	}
	var err error
	if mc.gossip, err = f.gossip.check(mc.mode, given, cfg.listen); err != nil {
		return err
	}
	mc.grace = *f.grace
	switch {
	case mc.grace < 0:
		return usagef("-membership-grace %v: want a duration of 0 or more", mc.grace)
	case mc.grace == 0 && !given["membership-grace"] && (mc.mode == "dns" || mc.mode == "gossip"):
		mc.grace = membership.DefaultGrace
	case mc.grace == 0:
		mc.grace = -1 // none
	}
	cfg.membership = mc
	if len(cfg.members) == 0 {
		cfg.members = []string{cfg.listen}
	}
	source := "-members"
	if cfg.membersFile != "" {
		source = "-members-file " + cfg.membersFile + ":"
	}
	return checkMembers(source, cfg.members, cfg.listen)
}

// firstMembers returns the member list to start with: for dns, the first
// answer (asked for up to three query timeouts) with this member added if
// the answer lacks it yet; a resolver that does not answer leaves this
// member alone until it does. Other modes read theirs while parsing flags.
func firstMembers(ctx context.Context, cfg *peerConfig, log *slog.Logger) []string {
	if cfg.membership.mode != "dns" {
		return cfg.members
	}
	d := cfg.membership.dns
	var err error
	for range 3 {
		var members []string
		if members, err = d.Resolve(ctx); err == nil {
			if !slices.Contains(members, cfg.listen) {
				log.Warn("DNS does not list this member yet; starting with it added (with Kubernetes, set publishNotReadyAddresses on the headless Service)",
					"listen", cfg.listen, "members", members)
				members = membership.Normalize(append(members, cfg.listen))
			}
			return members
		}
		if ctx.Err() != nil {
			break
		}
	}
	log.Warn("DNS did not answer at start; starting alone until it does", "err", err)
	return []string{cfg.listen}
}

// startMembership follows the configured source in the background,
// applying its lists to p. reload re-reads a members file (SIGHUP); done
// receives Follow's result once ctx ends or the source fails.
func startMembership(ctx context.Context, cfg *peerConfig, p *peer.Peer, reg prometheus.Registerer, log *slog.Logger) (done <-chan error, reload func(), err error) {
	metrics := membership.NewMetrics(prometheus.Labels{"member": cfg.listen})
	if err := reg.Register(metrics); err != nil {
		return nil, nil, fmt.Errorf("membership metrics: %w", err)
	}
	var src membership.Source
	reload = func() {}
	switch cfg.membership.mode {
	case "static":
		src = membership.Static(cfg.members)
	case "file":
		kick := make(chan struct{}, 1)
		reload = func() {
			select {
			case kick <- struct{}{}:
			default: // a re-read is pending already
			}
		}
		src = &membership.File{Path: cfg.membersFile, Reload: kick, Logger: log, Metrics: metrics}
	case "dns":
		d := cfg.membership.dns
		d.Logger, d.Metrics = log, metrics
		src = d
	case "gossip":
		g := cfg.membership.g
		g.SetLiveness(countSuspicions{p, metrics}) // gossip.go; the peer's only judge of down (Config.ExternalLiveness)
		src = g
	default:
		return nil, nil, fmt.Errorf("membership %q has no source", cfg.membership.mode)
	}
	liveness, _ := any(p).(membership.Liveness) // a peer that takes liveness from its sources
	ch := make(chan error, 1)
	go func() {
		ch <- membership.Follow(ctx, src, p, membership.Config{
			Self: cfg.listen, Members: p.Members(), Source: cfg.membership.mode,
			Grace: cfg.membership.grace, Liveness: liveness, Logger: log, Metrics: metrics,
		})
	}()
	return ch, reload, nil
}
