// Node metadata: what gossip carries about each member besides its gossip
// address: a version byte, so a later format can add fields; a flags byte
// (leaving: the member is about to leave, so its going is a leave, not a
// failure, which memberlist does not tell its delegates); then its
// data-path QUIC address. Decoding checks everything, since the bytes
// come from other members.

package gossip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

const metaVersion = 1

// Flags of the metadata.
const flagLeaving = 1 << 0

// meta is a member's decoded metadata.
type meta struct {
	addr    string // data-path QUIC address
	leaving bool
}

// maxAddrLen bounds a data address (a DNS name of 253 bytes and a port).
const maxAddrLen = 260

func encodeMeta(m meta) []byte {
	var flags byte
	if m.leaving {
		flags |= flagLeaving
	}
	return append([]byte{metaVersion, flags}, m.addr...)
}

// decodeMeta decodes a member's metadata.
func decodeMeta(b []byte) (meta, error) {
	if len(b) < 2 {
		return meta{}, errors.New("gossip: member metadata too short (not a tlsring member?)")
	}
	if b[0] != metaVersion {
		return meta{}, fmt.Errorf("gossip: member metadata version %d, want %d (members of different versions?)", b[0], metaVersion)
	}
	if b[1]&^flagLeaving != 0 {
		return meta{}, fmt.Errorf("gossip: member metadata flags %#x unknown", b[1])
	}
	m := meta{addr: string(b[2:]), leaving: b[1]&flagLeaving != 0}
	if err := checkAddr(m.addr); err != nil {
		return meta{}, fmt.Errorf("gossip: member metadata: data address %q: %w", m.addr, err)
	}
	return m, nil
}

// checkAddr checks a data address: host:port, a host, a port from 1 to
// 65535, at most maxAddrLen bytes.
func checkAddr(addr string) error {
	if len(addr) > maxAddrLen {
		return fmt.Errorf("longer than %d bytes", maxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("want host:port with a host")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return errors.New("want a port between 1 and 65535")
	}
	return nil
}
