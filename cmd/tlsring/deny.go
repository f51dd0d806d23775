// deny.go: `tlsring peer -deny-file`, the list of retired member
// certificates: a certificate on it is refused on every connection, even
// though the cluster CA signed it, so a decommissioned or leaked member
// certificate loses its rights without replacing the CA. The file is
// re-read on SIGHUP.

package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
)

// denyList is a set of retired certificates, by SHA-256 fingerprint of
// the DER certificate or by serial number.
type denyList struct {
	fingerprints map[[sha256.Size]byte]bool
	serials      map[string]bool // big.Int text, base 16, lower case
}

// parseDenyList reads one entry a line: a SHA-256 fingerprint in hex
// (colons allowed, as `openssl x509 -noout -fingerprint -sha256` prints
// it, with or without its "sha256 Fingerprint=" prefix), or "serial:"
// and the serial number in hex. '#' starts a comment.
func parseDenyList(data []byte) (*denyList, error) {
	d := &denyList{fingerprints: map[[sha256.Size]byte]bool{}, serials: map[string]bool{}}
	for i, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if s, ok := strings.CutPrefix(strings.ToLower(line), "serial:"); ok {
			n, ok := new(big.Int).SetString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""), 16)
			if !ok || n.Sign() < 0 {
				return nil, fmt.Errorf("line %d: %q is not a hex serial number", i+1, s)
			}
			d.serials[n.Text(16)] = true
			continue
		}
		if _, fp, ok := strings.Cut(line, "="); ok {
			line = fp
		}
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(line), ":", ""))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("line %d: want a SHA-256 fingerprint (64 hex digits) or serial:HEX, got %q", i+1, line)
		}
		d.fingerprints[[sha256.Size]byte(b)] = true
	}
	return d, nil
}

// check refuses a certificate on the list.
func (d *denyList) check(leaf *x509.Certificate) error {
	if d.fingerprints[sha256.Sum256(leaf.Raw)] || (leaf.SerialNumber != nil && d.serials[leaf.SerialNumber.Text(16)]) {
		return fmt.Errorf("certificate %q (serial %x) is on the deny list", leaf.Subject.CommonName, leaf.SerialNumber)
	}
	return nil
}

// readDenyFile reads a deny list file, bounded at 1 MiB.
func readDenyFile(path string) (*denyList, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	return parseDenyList(data)
}

// denyFile is a deny list that SIGHUP reloads.
type denyFile struct {
	path string
	list atomic.Pointer[denyList]
}

func (f *denyFile) authorize(leaf *x509.Certificate) error {
	if l := f.list.Load(); l != nil {
		return l.check(leaf)
	}
	return nil
}
