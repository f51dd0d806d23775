package peer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"strings"
	"testing"
)

func TestAuthorize(t *testing.T) {
	c := newCluster(t, 1, nil)
	p := c.peers[c.names[0]]
	// The in-memory names are m0:7000; add IP and DNS members.
	p.SetMembers([]string{c.names[0], "10.1.2.3:7946", "[2001:db8::7]:7946", "Cache-B.example.:7946"})
	cert := func(cn string, ips []string, dns ...string) *x509.Certificate {
		crt := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
		for _, ip := range ips {
			crt.IPAddresses = append(crt.IPAddresses, net.ParseIP(ip))
		}
		return crt
	}
	for _, tc := range []struct {
		name string
		crt  *x509.Certificate
		ok   bool
	}{
		{"member IPv4", cert("a", []string{"10.1.2.3"}), true},
		{"member IPv4 as IPv4-in-IPv6", cert("a", []string{"::ffff:10.1.2.3"}), true},
		{"member IPv6", cert("b", []string{"2001:db8::7"}), true},
		{"member DNS, other case", cert("c", nil, "cache-b.EXAMPLE"), true},
		{"member DNS by wildcard", cert("c", nil, "*.example"), true},
		{"in-memory name host", cert("d", nil, "m0"), true},
		{"outsider IP", cert("x", []string{"10.1.2.4"}), false},
		{"outsider DNS", cert("y", nil, "cache-c.example"), false},
		{"no SAN", cert("z", nil), false},
	} {
		err := p.authorize(tc.crt)
		if (err == nil) != tc.ok {
			t.Errorf("%s: authorize = %v, want ok = %v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "member list") {
			t.Errorf("%s: the error does not say what is wrong: %v", tc.name, err)
		}
	}
	// A member removed from the list is refused at once.
	p.SetMembers([]string{c.names[0], "10.1.2.3:7946"})
	if err := p.authorize(cert("b", []string{"2001:db8::7"})); err == nil {
		t.Error("a removed member's certificate is still authorized")
	}
	// Config.Authorize refuses first (a deny list).
	retired := errors.New("retired")
	p.cfg.Authorize = func(leaf *x509.Certificate) error {
		if leaf.Subject.CommonName == "old" {
			return retired
		}
		return nil
	}
	if err := p.authorize(cert("old", []string{"10.1.2.3"})); !errors.Is(err, retired) {
		t.Errorf("a denied certificate: %v", err)
	}
}
