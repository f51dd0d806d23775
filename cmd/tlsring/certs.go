// certs.go: `tlsring certs`, which creates a cluster CA (once) and member
// certificates signed by it, for trying tlsring out.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
)

func runCerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("certs", `Creates DIR/ca.pem and DIR/ca-key.pem (an ECDSA P-256 cluster CA) if they do
not exist, then DIR/NAME.pem and DIR/NAME-key.pem: a member certificate
(ECDSA P-256, server and client usage, IP/DNS SANs from -hosts) signed by
that CA. It never overwrites a member key. Key files get mode 0600.

Members dial each other by the host part of their -listen address, so
-hosts must include it (an IP address or a DNS name). Use the files with
tlsring peer -cert DIR/NAME.pem -key DIR/NAME-key.pem -ca DIR/ca.pem.`, stdout, stderr)
	dir := fset.String("dir", ".", "directory for the CA and member files (created if missing)")
	name := fset.String("name", "", "member name: the files are DIR/NAME.pem and DIR/NAME-key.pem (required)")
	hosts := fset.String("hosts", "127.0.0.1", "comma-separated IP addresses and DNS names the certificate is valid for")
	if err := parseFlags(fset, args, stdout); err != nil {
		return err
	}
	if *name == "" {
		return usagef("-name is required")
	}
	if strings.ContainsAny(*name, `/\`) || *name == "." || *name == ".." || *name == "ca" || *name == "ca-key" {
		return usagef("-name %q: want a plain file name other than ca", *name)
	}
	hostList := splitList(*hosts)
	if len(hostList) == 0 {
		return usagef("-hosts is empty")
	}
	for _, h := range hostList {
		if err := checkHost(h); err != nil {
			return usagef("-hosts %q: %v", h, err)
		}
	}
	created, err := makeCerts(*dir, *name, hostList)
	for _, f := range created {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	return err
}

// checkHost checks that h can name a member in a certificate: an IP
// address or a DNS name (letters, digits and hyphens in dot-separated
// labels of 1 to 63 characters, no label starting or ending with a hyphen,
// 253 characters at most).
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	const want = "want an IP address or a DNS name such as m1.example.com"
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return errors.New(want)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New(want)
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return errors.New(want)
			}
		}
	}
	return nil
}

// makeCerts does the work of `tlsring certs` and returns the files it
// created.
func makeCerts(dir, name string, hosts []string) ([]string, error) {
	certFile := filepath.Join(dir, name+".pem")
	keyFile := filepath.Join(dir, name+"-key.pem")
	for _, f := range []string{keyFile, certFile} {
		if _, err := os.Lstat(f); err == nil {
			return nil, fmt.Errorf("%s already exists; refusing to overwrite a member's certificate or key (remove it or pick another -name)", f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var created []string
	ca, caCreated, err := loadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	created = append(created, caCreated...)
	member, err := ca.Issue(certgen.ECDSA, certgen.MemberValidity, hosts...)
	if err != nil {
		return created, err
	}
	keyPEM, err := certgen.KeyPEM(member.Key)
	if err != nil {
		return created, err
	}
	if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
		return created, err
	}
	created = append(created, keyFile)
	if err := writeNew(certFile, certgen.CertPEM(member.Cert), 0o644); err != nil {
		return created, err
	}
	return append(created, certFile), nil
}

// loadOrCreateCA reads DIR/ca.pem and DIR/ca-key.pem, or creates both when
// neither exists.
func loadOrCreateCA(dir string) (*certgen.CA, []string, error) {
	certFile := filepath.Join(dir, "ca.pem")
	keyFile := filepath.Join(dir, "ca-key.pem")
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := certgen.ParseCA(certPEM, keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
		}
		return ca, nil, nil
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		// Create below.
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, nil, certErr
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, keyErr
	case certErr != nil:
		return nil, nil, fmt.Errorf("%s exists but %s does not; restore it or remove both to make a new CA", keyFile, certFile)
	default:
		return nil, nil, fmt.Errorf("%s exists but %s does not; restore it or remove both to make a new CA", certFile, keyFile)
	}
	ca, err := certgen.NewCA("tlsring cluster CA", certgen.CAValidity)
	if err != nil {
		return nil, nil, err
	}
	kp, err := certgen.KeyPEM(ca.Key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeNew(keyFile, kp, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeNew(certFile, certgen.CertPEM(ca.Cert), 0o644); err != nil {
		return nil, []string{keyFile}, err
	}
	return ca, []string{keyFile, certFile}, nil
}

// writeNew writes data to a file that must not exist yet, with mode perm
// (regardless of the umask).
func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
