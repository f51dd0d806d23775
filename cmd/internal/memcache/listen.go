// listen.go: opening the face's listener: a Unix socket with file
// permissions, or TCP with a loud warning when it is reachable beyond
// loopback (the face has no authentication, and what TLS terminators store
// through it are sessions with their master secrets).

package memcache

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// DefaultSocketMode is the file mode of the face's Unix socket: the
// owner and its group may connect (connecting takes write permission).
const DefaultSocketMode fs.FileMode = 0o660

// ListenConfig says how Listen opens the face.
type ListenConfig struct {
	// SocketMode is the permission bits of a Unix socket; connecting needs
	// write permission. 0 = DefaultSocketMode (0660).
	SocketMode fs.FileMode
	// Logger receives the warning for a TCP address reachable beyond
	// loopback. nil = slog.Default().
	Logger *slog.Logger
}

// Listen opens addr for a Server: "unix:/path" for a Unix socket, else a
// TCP host:port.
//
// A Unix socket is created with cfg.SocketMode, never more open, even for
// an instant: it is made in a fresh private directory next to path, given
// its mode, then renamed into place. A socket file left at path by a
// process that died is replaced; one that answers is an error. The socket
// file is removed when the listener is closed.
//
// A TCP address whose host is not a loopback address (":11211" is every
// interface) gets a warning at warn level: anyone who can reach it can
// read and write the ring's sessions.
func Listen(addr string, cfg ListenConfig) (net.Listener, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		mode := cfg.SocketMode
		if mode == 0 {
			mode = DefaultSocketMode
		}
		return listenUnix(path, mode.Perm())
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		where := "on " + ta.IP.String()
		if ta.IP.IsUnspecified() {
			where = "on every interface"
		}
		log.Warn("memcache: the memcached face is reachable "+where+", without authentication: whoever can connect can read the TLS sessions it holds (master secrets included) and store forged ones. Bind it to 127.0.0.1 or use unix:/path, or firewall it to the TLS terminators",
			"addr", l.Addr().String())
	}
	return l, nil
}

// listenUnix creates the socket at path with mode; see Listen.
func listenUnix(path string, mode fs.FileMode) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("memcache: unix: wants a socket path, as in unix:/run/tlsring/memcached.sock")
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("memcache: %s exists and is not a socket: remove it or choose another path", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("memcache: %s is in use by another process", path)
		}
		// Left by a process that died: replace it.
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".tlsring-sock-")
	if err != nil {
		return nil, fmt.Errorf("memcache: cannot create the socket next to %s: %w", path, err)
	}
	defer os.Remove(dir)
	tmp := filepath.Join(dir, "s")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("memcache: %w (the socket is made at this longer path first: a socket path has at most 107 bytes)", err)
	}
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, mode); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("memcache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("memcache: %w", err)
	}
	return &unixListener{UnixListener: ul, path: path}, nil
}

// unixListener is a Unix listener at its final path, which Close removes.
type unixListener struct {
	*net.UnixListener
	path string
	once sync.Once
	err  error
}

// Addr returns the socket's path.
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Close stops listening and removes the socket file.
func (l *unixListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		os.Remove(l.path)
	})
	return l.err
}
