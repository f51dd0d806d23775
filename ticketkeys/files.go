// files.go: the fleet's keys as nginx and Apache key files, for TLS
// terminators that read ticket keys only from files.

package ticketkeys

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	// NginxKeyLen is the size of an nginx ssl_session_ticket_key file of
	// AES-256 (16 bytes of key name, 32 of HMAC-SHA256 key, 32 of AES key).
	NginxKeyLen = 80
	// ApacheKeyLen is the size of an Apache SSLSessionTicketKeyFile (16
	// bytes of key name, 16 of HMAC secret, 16 of AES-128 key).
	ApacheKeyLen = 48
	// NginxInclude is the name of the file, in the key directory, that
	// lists every nginx key file as ssl_session_ticket_key directives, to
	// be included in nginx's server (or http) block.
	NginxInclude = "nginx-ticket-keys.conf"
	// ApacheFile is the name of Apache's key file in the key directory.
	ApacheFile = "apache-ticket.key"
)

// fileKey derives n bytes for a terminator from key: a 16-byte name (the
// epoch, the key ID and 4 derived bytes, so that tickets name their epoch
// as this package's do) and n-16 derived bytes. The derivation is one-way:
// the files reveal nothing of the key Go servers use, nor of each other.
func fileKey(key *Key, label string, n int) ([]byte, error) {
	d, err := hkdf.Key(sha256.New, key.Secret[:], nil, "tlsring ticket key file "+label, n-12)
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	binary.BigEndian.PutUint64(out[0:8], key.Epoch)
	copy(out[8:12], key.ID[:])
	copy(out[12:], d)
	clear(d)
	return out, nil
}

// NginxSlots is how many nginx key files WriteFiles keeps: the current
// epoch's, the next one's, and one per past epoch the retention covers.
func (k *Keyring) NginxSlots() int {
	return 2 + int((k.o.Retention+k.o.Period-1)/k.o.Period)
}

// WriteFiles writes the keys held now into dir, each file replaced
// atomically (written aside, then renamed):
//
//   - nginx-0.key .. nginx-<NginxSlots-1>.key, 80 bytes each: the current
//     epoch's key first (nginx seals with the first ssl_session_ticket_key),
//     then the next epoch's and the retained past ones; slots with no key
//     hold a throwaway random key, so that nginx's configuration can name a
//     fixed set of files;
//   - NginxInclude, the ssl_session_ticket_key directives naming them;
//   - ApacheFile, 48 bytes: the current epoch's key only, since Apache
//     reads one key (tickets of the previous epoch stop resuming on the
//     reload after each rotation).
//
// Keep dir on a tmpfs: the files open every ticket of the retention
// window, and a disk keeps what is overwritten.
func (k *Keyring) WriteFiles(dir string) error {
	cur := k.epochAt(k.o.Now())
	sk, _ := k.sealKey(k.o.Now()) // a local key if the ring gave none yet, as Seal does
	clear(sk.Secret[:])
	keys := k.Keys()
	defer func() {
		for i := range keys {
			clear(keys[i].Secret[:])
		}
	}()
	slots := k.NginxSlots()
	var include strings.Builder
	fmt.Fprintf(&include, "# Written by tlsring peer: the fleet's session ticket keys, current first.\n")
	var errs []error
	for i := range slots {
		var data []byte
		var err error
		switch {
		case i < len(keys):
			data, err = fileKey(&keys[i], "nginx", NginxKeyLen)
		default:
			data = make([]byte, NginxKeyLen)
			_, err = rand.Read(data)
		}
		if err != nil {
			return fmt.Errorf("ticketkeys: %w", err)
		}
		name := filepath.Join(dir, fmt.Sprintf("nginx-%d.key", i))
		errs = append(errs, writeAtomic(name, data))
		clear(data)
		fmt.Fprintf(&include, "ssl_session_ticket_key %s;\n", name)
	}
	errs = append(errs, writeAtomic(filepath.Join(dir, NginxInclude), []byte(include.String())))
	if len(keys) > 0 && keys[0].Epoch == cur {
		data, err := fileKey(&keys[0], "apache", ApacheKeyLen)
		if err != nil {
			return fmt.Errorf("ticketkeys: %w", err)
		}
		errs = append(errs, writeAtomic(filepath.Join(dir, ApacheFile), data))
		clear(data)
	}
	return errors.Join(errs...)
}

// writeAtomic writes data to name through a temporary file in the same
// directory, readable by its owner only.
func writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tlsring-*")
	if err != nil {
		return fmt.Errorf("ticketkeys: %w (does the key directory exist and is it writable?)", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ticketkeys: writing %s: %w", name, err)
	}
	return nil
}
