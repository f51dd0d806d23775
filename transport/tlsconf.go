// Mutual TLS between members, for any QUIC protocol the cluster speaks:
// the peer protocol here and membership gossip (peer/gossip) build their
// TLS configurations with these two functions, so both check the same
// things: TLS 1.3, a certificate chaining to the cluster CA on both ends
// (with the client-auth key usage for callers), the dialled host name,
// and an authorization callback.

package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ServerTLS returns the accepting side's TLS for protocol alpn: TLS 1.3 and
// a client certificate that must chain to base.ClientCAs. authorize, if not
// nil, is then asked about the connection; refused, if not nil, is told of
// every refusal with the caller's address. base (Certificates, ClientCAs)
// is cloned, never modified.
//
// The chain is verified in VerifyConnection rather than by ClientAuth =
// RequireAndVerifyClientCert so that every refusal, certificate missing or
// not from the cluster CA, can be logged with the caller's address
// (crypto/tls would refuse silently). The check is the one crypto/tls
// does: x509 chain to ClientCAs with the client-auth key usage.
func ServerTLS(base *tls.Config, alpn string, authorize func(tls.ConnectionState) error, refused func(remote string, err error)) *tls.Config {
	c := base.Clone()
	c.NextProtos = []string{alpn}
	c.MinVersion = tls.VersionTLS13
	c.ClientAuth = tls.RequestClientCert
	c.SessionTicketsDisabled = true
	roots := base.ClientCAs
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		remote := "unknown"
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		cc := c.Clone()
		cc.GetConfigForClient = nil
		cc.VerifyConnection = func(cs tls.ConnectionState) error {
			err := verifyClient(cs, roots)
			if err == nil && authorize != nil {
				err = authorize(cs)
			}
			if err != nil && refused != nil {
				refused(remote, err)
			}
			return err
		}
		return cc, nil
	}
	return c
}

// ClientTLS returns the dialling side's TLS for protocol alpn, to be
// completed per member with its ServerName: the member's certificate must
// chain to base.RootCAs and name the host dialled (crypto/tls checks
// both), then pass authorize, if not nil. base is cloned, never modified.
func ClientTLS(base *tls.Config, alpn string, authorize func(tls.ConnectionState) error) *tls.Config {
	c := base.Clone()
	c.NextProtos = []string{alpn}
	c.MinVersion = tls.VersionTLS13
	c.ClientSessionCache = nil
	if authorize != nil {
		c.VerifyConnection = authorize
	}
	return c
}

func verifyClient(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("transport: no client certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("transport: client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	return nil
}

// StatelessResetKey derives the QUIC stateless reset key of a socket that
// listens on addr from the member's certificate key, so that a restarted
// member resets connections its previous incarnation held (callers notice
// at their next packet, not at the idle timeout). Other QUIC protocols of
// a member (gossip) use it for their own sockets; the key differs per
// address.
func StatelessResetKey(cert tls.Certificate, addr string) *[32]byte {
	return deriveResetKey(cert, addr)
}
