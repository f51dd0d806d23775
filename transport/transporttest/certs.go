// Package transporttest makes throwaway certificates for tests; it is the
// one certificate generator of the repository's tests. An ECDSA P-256 CA
// signs member certificates shaped like the ones `tlsring certs` makes
// (both server and client key usage, IP and DNS SANs), ready to put in
// transport.QUICConfig.TLS or peer.Config.TLS, and serves as well for TLS
// servers' certificates (ECDSA, or RSA with RSACert). Everything is
// generated in memory; nothing here is fit for production keys.
//
// Typical use:
//
//	ca := transporttest.NewCA(t)
//	cfg := ca.MemberTLS(t, "127.0.0.1")  // Certificates + RootCAs + ClientCAs
//	other := transporttest.NewCA(t)      // a foreign CA, for refusal tests
package transporttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is an in-memory cluster certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// Pool holds just Cert, for RootCAs and ClientCAs.
	Pool *x509.CertPool
}

// NewCA makes a fresh self-signed ECDSA P-256 CA valid for a day. It
// fails tb on error.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	ca, err := NewCAErr()
	if err != nil {
		tb.Fatalf("transporttest: %v", err)
	}
	return ca
}

// NewCAErr is NewCA for code without a testing.TB (benchmark commands).
func NewCAErr() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tlsring test cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, Pool: pool}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// MemberCert issues a member certificate for hosts (IP addresses become
// IP SANs, anything else DNS SANs; none means "127.0.0.1"), with both
// server and client key usage. It fails tb on error.
func (ca *CA) MemberCert(tb testing.TB, hosts ...string) tls.Certificate {
	tb.Helper()
	c, err := ca.MemberCertErr(hosts...)
	if err != nil {
		tb.Fatalf("transporttest: %v", err)
	}
	return c
}

// MemberCertErr is MemberCert for code without a testing.TB.
func (ca *CA) MemberCertErr(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	return ca.issue(key, hosts)
}

// RSACert is MemberCert with an RSA-2048 key, for tests of TLS servers
// whose handshakes cost what an RSA certificate costs.
func (ca *CA) RSACert(tb testing.TB, hosts ...string) tls.Certificate {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err == nil {
		var c tls.Certificate
		if c, err = ca.issue(key, hosts); err == nil {
			return c
		}
	}
	tb.Fatalf("transporttest: %v", err)
	return tls.Certificate{}
}

// PEM returns the CA certificate PEM-encoded, for programs such as
// openssl that read it from a file.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// issue signs a certificate for hosts and key.
func (ca *CA) issue(key crypto.Signer, hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"}
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		usage |= x509.KeyUsageKeyEncipherment // TLS 1.2 RSA key exchange
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "tlsring member " + hosts[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     usage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// MemberTLS returns a member's TLS configuration: a fresh certificate for
// hosts (see MemberCert) and this CA in RootCAs and ClientCAs. It fails
// tb on error.
func (ca *CA) MemberTLS(tb testing.TB, hosts ...string) *tls.Config {
	tb.Helper()
	return ca.TLSFor(ca.MemberCert(tb, hosts...))
}

// MemberTLSErr is MemberTLS for code without a testing.TB.
func (ca *CA) MemberTLSErr(hosts ...string) (*tls.Config, error) {
	c, err := ca.MemberCertErr(hosts...)
	if err != nil {
		return nil, err
	}
	return ca.TLSFor(c), nil
}

// TLSFor returns a TLS configuration presenting cert and trusting this CA
// on both sides. Pair a certificate of one CA with another CA's TLSFor to
// build a member that trusts the cluster but is not trusted by it.
func (ca *CA) TLSFor(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca.Pool,
		ClientCAs:    ca.Pool,
		MinVersion:   tls.VersionTLS13,
	}
}

// WriteMemberFiles writes this CA and a fresh member certificate for
// hosts (see MemberCert) as PEM files, named as `tlsring certs -dir dir
// -name name` names them: dir/ca.pem, dir/name.pem and dir/name-key.pem
// (mode 0600). It is for tests and examples of code that loads those
// files (transport.LoadMemberTLS).
func (ca *CA) WriteMemberFiles(dir, name string, hosts ...string) error {
	c, err := ca.MemberCertErr(hosts...)
	if err != nil {
		return err
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		typ  string
		der  []byte
		mode os.FileMode
	}{
		{"ca.pem", "CERTIFICATE", ca.Cert.Raw, 0o644},
		{name + ".pem", "CERTIFICATE", c.Certificate[0], 0o644},
		{name + "-key.pem", "PRIVATE KEY", key, 0o600},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(filepath.Join(dir, f.name), data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// FreeUDPAddrs returns n distinct loopback UDP addresses ("127.0.0.1:port")
// that were free a moment ago, for members that must know each other's
// addresses before any of them listens. It fails tb on error.
func FreeUDPAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	conns := make([]net.PacketConn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("transporttest: %v", err)
		}
		conns = append(conns, c) // held open until all are picked: distinct ports
		addrs = append(addrs, c.LocalAddr().String())
	}
	return addrs
}
