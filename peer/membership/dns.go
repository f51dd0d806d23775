// The DNS source: polls a name's SRV records, or its A and AAAA records
// with a port, at an interval; the ring is the resolved set (a Kubernetes
// headless Service, a Consul service name). A resolver that does not
// answer, answers an error, or answers nothing keeps the last good
// membership (logged and counted).
//
// Queries go through github.com/miekg/dns to one configured resolver,
// not through net.Resolver, so that what the ring follows is exactly what
// that server answers for that name: no /etc/hosts, no search domains, no
// cache, A and AAAA both required to succeed (net.Resolver returns the
// half that answered, which would shrink the ring), the response code
// seen (NXDOMAIN versus SERVFAIL), and truncated answers (a large
// Service) asked again over TCP.

package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults for DNS's zero values.
const (
	DefaultDNSInterval = 5 * time.Second
	DefaultDNSTimeout  = 2 * time.Second
)

// DNS is a source that polls DNS.
type DNS struct {
	// Name is what to resolve. "name:port" asks for A and AAAA records,
	// each address with that port becoming a member ("10.0.0.5:7000");
	// a name without a port asks for SRV records, each target and port
	// becoming a member ("tlsring-0.tlsring.default.svc.cluster.local:7000",
	// names kept as names: certificates name them, and they survive a
	// change of address). The name is fully qualified: no search domains.
	Name string
	// Server is the resolver's "host:port". "" = the first nameserver
	// of /etc/resolv.conf.
	Server string
	// Interval between polls (jittered by up to a tenth, so that a fleet
	// does not poll in step). 0 = DefaultDNSInterval (5 s).
	Interval time.Duration
	// Timeout bounds one query. 0 = DefaultDNSTimeout (2 s).
	Timeout time.Duration
	Logger  *slog.Logger // nil = slog.Default()
	Metrics *Metrics     // nil = not counted

	once   sync.Once
	server string
	err    error
}

// dnsError is a failed poll, with the reason it is counted under.
type dnsError struct {
	reason string
	err    error
}

func (e *dnsError) Error() string { return e.err.Error() }
func (e *dnsError) Unwrap() error { return e.err }

func failf(reason, format string, args ...any) error {
	return &dnsError{reason: reason, err: fmt.Errorf("membership: dns: "+format, args...)}
}

// UseMetrics makes the source count its errors on m unless it has
// Metrics already; Follow calls it.
func (x *DNS) UseMetrics(m *Metrics) {
	if x.Metrics == nil {
		x.Metrics = m
	}
}

// SourceName returns "dns", the source's name in logs and metrics.
func (*DNS) SourceName() string { return "dns" }

// Check checks Name and Server and finds the resolver; Resolve and Run
// call it.
func (d *DNS) Check() error {
	d.once.Do(func() { d.server, d.err = d.check() })
	return d.err
}

func (d *DNS) check() (string, error) {
	name := d.Name
	if h, p, err := net.SplitHostPort(d.Name); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "", fmt.Errorf("membership: dns name %q: want a port between 1 and 65535", d.Name)
		}
		name = h
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" || strings.ContainsAny(name, ":[]") {
		return "", fmt.Errorf("membership: dns name %q: want a domain name (SRV records) or name:port (A and AAAA records)", d.Name)
	}
	if d.Server != "" {
		if err := CheckAddr(d.Server); err != nil {
			return "", fmt.Errorf("membership: dns server %q: %v", d.Server, err)
		}
		return d.Server, nil
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cc.Servers) == 0 {
		return "", fmt.Errorf("membership: dns: no resolver: give its host:port (reading /etc/resolv.conf: %v)", err)
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// Resolve asks once and returns the members, sorted: an error when the
// resolver does not answer, answers an error, or answers no record.
func (d *DNS) Resolve(ctx context.Context) ([]string, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	var members []string
	if host, port, err := net.SplitHostPort(d.Name); err == nil {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			rrs, err := d.query(ctx, host, qt)
			if err != nil {
				return nil, err
			}
			for _, rr := range rrs {
				switch rr := rr.(type) {
				case *dns.A:
					members = append(members, net.JoinHostPort(rr.A.String(), port))
				case *dns.AAAA:
					members = append(members, net.JoinHostPort(rr.AAAA.String(), port))
				}
			}
		}
	} else {
		rrs, err := d.query(ctx, d.Name, dns.TypeSRV)
		if err != nil {
			return nil, err
		}
		for _, rr := range rrs {
			srv, ok := rr.(*dns.SRV)
			if !ok {
				continue
			}
			target := strings.TrimSuffix(srv.Target, ".")
			if target == "" { // "." : the service is decidedly not available here
				continue
			}
			m := net.JoinHostPort(target, strconv.Itoa(int(srv.Port)))
			if err := CheckAddr(m); err != nil {
				return nil, failf("bad_record", "%s: SRV record %q: %v", d.Name, srv.String(), err)
			}
			members = append(members, m)
		}
	}
	if len(members) == 0 {
		return nil, failf("empty", "%s: no records", d.Name)
	}
	return Normalize(members), nil
}

// query asks the resolver for one type of records of name, over UDP and
// again over TCP when the answer was truncated.
func (d *DNS) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDNSTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp"}
	r, _, err := c.ExchangeContext(ctx, m, d.server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, d.server)
	}
	qs := dns.TypeToString[qtype]
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return nil, failf("timeout", "%s %s: no answer from %s within %v", name, qs, d.server, timeout)
		}
		return nil, failf("network", "%s %s: asking %s: %v", name, qs, d.server, err)
	}
	if len(r.Question) != 1 || r.Question[0].Qtype != qtype || !strings.EqualFold(r.Question[0].Name, m.Question[0].Name) {
		return nil, failf("mismatch", "%s %s: %s answered another question", name, qs, d.server)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return r.Answer, nil
	case dns.RcodeNameError:
		return nil, failf("nxdomain", "%s %s: %s answers that the name does not exist", name, qs, d.server)
	default:
		rc := dns.RcodeToString[r.Rcode]
		return nil, failf(strings.ToLower(rc), "%s %s: %s answers %s", name, qs, d.server, rc)
	}
}

// Run polls at once and then every Interval, and reports the list when it
// changed, until ctx ends. A failed poll keeps the last good list.
func (d *DNS) Run(ctx context.Context, update func(members []string)) error {
	if err := d.Check(); err != nil {
		return err
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("dns_name", d.Name, "dns_server", d.server)
	interval := d.Interval
	if interval <= 0 {
		interval = DefaultDNSInterval
	}
	var last []string
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		members, err := d.Resolve(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			failures++
			reason := "error"
			var de *dnsError
			if errors.As(err, &de) {
				reason = de.reason
			}
			d.Metrics.SourceError("dns", reason)
			if failures == 1 || failures%12 == 0 {
				log.Warn("DNS poll failed; keeping the last good membership", "err", err, "failures_in_a_row", failures)
			}
		default:
			if failures > 0 {
				log.Info("DNS answers again", "after_failures", failures)
				failures = 0
			}
			if !slices.Equal(members, last) {
				log.Info("DNS membership", "members", members)
				last = members
				update(members)
			}
		}
		timer.Reset(interval - interval/10 + rand.N(interval/5+1))
	}
}
