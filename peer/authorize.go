// Authorization of other members: the cluster CA says a certificate is
// genuine; this says whether its holder is a member now. A certificate must
// name (IP or DNS SAN) the host of some address in the current member list,
// and pass Config.Authorize, where an operator retires certificates (a deny
// list) without replacing the CA. The QUIC transport asks on every
// handshake, in both directions, and again when Reauthorize is called.

package peer

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/tlsring/tlsring/ring"
)

// memberHosts is the set of hosts of one ring's members.
type memberHosts struct {
	ring  *ring.Ring
	ips   map[netip.Addr]bool
	names map[string]bool // lower case
}

func newMemberHosts(r *ring.Ring) *memberHosts {
	h := &memberHosts{ring: r, ips: map[netip.Addr]bool{}, names: map[string]bool{}}
	for _, m := range r.Members() {
		host, _, err := net.SplitHostPort(m)
		if err != nil {
			host = m
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			h.ips[ip.Unmap()] = true
		} else {
			h.names[strings.ToLower(strings.TrimSuffix(host, "."))] = true
		}
	}
	return h
}

// authorize checks the certificate of a member at the other end of a
// connection (its chain has been verified against the cluster CA).
func (p *Peer) authorize(leaf *x509.Certificate) error {
	if p.cfg.Authorize != nil {
		if err := p.cfg.Authorize(leaf); err != nil {
			return err
		}
	}
	r := p.core.Ring()
	h := p.hosts.Load()
	if h == nil || h.ring != r {
		h = newMemberHosts(r)
		p.hosts.Store(h)
	}
	for _, ip := range leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok && h.ips[a.Unmap()] {
			return nil
		}
	}
	for _, n := range leaf.DNSNames {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if h.names[n] {
			return nil
		}
		if strings.HasPrefix(n, "*.") {
			// A wildcard name: let crypto/x509's matching decide.
			for name := range h.names {
				if leaf.VerifyHostname(name) == nil {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("peer: certificate %q (IP SANs %v, DNS SANs %v) names no host of the current member list; a member's certificate must name the host of its address in the list",
		leaf.Subject.CommonName, leaf.IPAddresses, leaf.DNSNames)
}

// reauthorizer is a Transport that can check its live connections again.
type reauthorizer interface{ Reauthorize() }

// Reauthorize checks the certificates of the members connected now again
// and closes the connections of those no longer authorized: call it after
// Config.Authorize's answers change (a reloaded deny list). SetMembers
// calls it itself.
func (p *Peer) Reauthorize() {
	if r, ok := p.tr.(reauthorizer); ok {
		r.Reauthorize()
	}
}
