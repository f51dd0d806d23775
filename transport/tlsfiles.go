// tlsfiles.go: loading a member's mutual-TLS configuration from the PEM
// files `tlsring certs` writes (a member certificate, its key and the
// cluster CA), checked the way the other members will check it.

package transport

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
)

// LoadMemberTLS reads a member's certificate and private key and the
// cluster CA from PEM files, such as `tlsring certs -dir certs -name m1`
// writes (certs/m1.pem, certs/m1-key.pem, certs/ca.pem), and returns the
// configuration peer.Config.TLS and QUICConfig.TLS want: the certificate,
// and the CA in both RootCAs and ClientCAs. caFile may hold several CA
// certificates (while the CA is being replaced).
//
// It checks now what the other members would refuse later: the
// certificate must chain to the CA and, unless self is "", name the host
// of self (this member's "host:port" in the member list) as an IP or DNS
// SAN. The error says which file is wrong.
func LoadMemberTLS(certFile, keyFile, caFile, self string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("transport: reading the member certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("transport: reading the member key: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("transport: reading the cluster CA: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("transport: certificate %s with key %s: %w", certFile, keyFile, err)
	}
	pool, err := parseCertPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("transport: cluster CA %s: %w", caFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil { // X509KeyPair fills Leaf since Go 1.23; kept for GODEBUG=x509keypairleaf=0
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("transport: certificate %s: %w", certFile, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("transport: certificate %s is not signed by the cluster CA %s: %w", certFile, caFile, err)
	}
	if self != "" {
		host, _, err := net.SplitHostPort(self)
		if err != nil {
			return nil, fmt.Errorf("transport: member address %q: %w", self, err)
		}
		if err := leaf.VerifyHostname(host); err != nil {
			return nil, fmt.Errorf("transport: certificate %s is not valid for %s, the host of this member's address %s, which other members verify: %w", certFile, host, self, err)
		}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// ParseCertPool reads every PEM "CERTIFICATE" block of data into a new
// pool; it fails when data holds none or one does not parse.
func ParseCertPool(data []byte) (*x509.CertPool, error) {
	pool, err := parseCertPool(data)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return pool, nil
}

func parseCertPool(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
