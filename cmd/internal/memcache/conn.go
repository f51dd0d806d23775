// conn.go: one client connection: read a command, answer it, repeat. A
// connection runs one command at a time and reads no further command
// while its replies are unsent (backpressure); a client that stalls is cut
// off after StallTimeout; pending replies are flushed at EOF.

package memcache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// deadliner is the part of net.Conn that serveConn uses when present.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// stallWriter writes to a client under a fresh deadline of timeout per
// write, so that a client that takes nothing for timeout is cut off, and
// remembers the first error.
type stallWriter struct {
	w       io.Writer
	dl      deadliner // nil: no deadlines
	timeout time.Duration
	err     error
}

func (sw *stallWriter) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	if sw.dl != nil {
		sw.dl.SetWriteDeadline(time.Now().Add(sw.timeout))
	}
	n, err := sw.w.Write(p)
	if err != nil {
		sw.err = err
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveConn answers the commands read from rw until it ends, errs, says
// quit, stalls or breaks the protocol beyond repair. Replies pending when
// it stops are flushed (a client that half-closes after its last command
// gets every answer). cn, if not nil, tracks whether it is idle.
func (s *Server) serveConn(rw io.ReadWriter, cn *conn) {
	dl, _ := rw.(deadliner)
	cfg := s.settings()
	stall, idle := cfg.StallTimeout, cfg.IdleTimeout
	sw := &stallWriter{w: rw, dl: dl, timeout: stall}
	r := bufio.NewReaderSize(rw, readBufferSize)
	w := bufio.NewWriterSize(sw, writeBufferSize)
	defer func() {
		w.Flush()
		if isTimeout(sw.err) {
			s.stalled(rw, stallWrite, stall)
		} else if sw.err != nil {
			s.settings().Logger.Debug("memcache: connection write failed", "err", sw.err)
		}
	}()
	for {
		if r.Buffered() == 0 {
			// Answer pipelined commands together, then wait for more.
			if w.Flush() != nil {
				return
			}
			cn.setIdle(true)
			if dl != nil {
				dl.SetReadDeadline(time.Now().Add(idle))
			}
		}
		line, err := r.ReadSlice('\n')
		cn.setIdle(false)
		if errors.Is(err, bufio.ErrBufferFull) {
			s.Metrics.command("invalid", "client_error")
			w.WriteString("CLIENT_ERROR line too long\r\n")
			return
		}
		if err != nil {
			// EOF (possibly after an unterminated line, which is not a
			// command), the idle timeout, or a broken connection.
			if len(line) > 0 && !errors.Is(err, io.EOF) {
				s.settings().Logger.Debug("memcache: connection read failed", "err", err)
			}
			return
		}
		cmd, perr := ParseCommand(line)
		if perr != nil {
			var pe *Error
			errors.As(perr, &pe)
			s.Metrics.command("invalid", "client_error")
			w.Write(pe.Reply())
			continue
		}
		// The keys alias r's buffer, which the next read overwrites, and
		// a Backend may use a key after returning (peer's hedged reads
		// do): give it copies.
		for i, k := range cmd.Keys {
			cmd.Keys[i] = bytes.Clone(k)
		}
		var keep bool
		if cmd.Storage {
			if dl != nil {
				// The data block follows its line at once from any real
				// client: a client that holds it back holds a value-sized
				// buffer, so it gets StallTimeout, not IdleTimeout.
				dl.SetReadDeadline(time.Now().Add(stall))
			}
			var rerr error
			keep, rerr = s.storage(r, w, &cmd)
			if isTimeout(rerr) {
				s.stalled(rw, stallData, stall)
			}
			if dl != nil {
				dl.SetReadDeadline(time.Now().Add(idle))
			}
		} else {
			keep = s.command(w, &cmd, sw)
		}
		if !keep || sw.err != nil {
			return
		}
	}
}

// stalled counts and logs a connection cut off for stalling.
func (s *Server) stalled(rw io.ReadWriter, during string, after time.Duration) {
	s.Metrics.stall(during)
	remote := ""
	if c, ok := rw.(net.Conn); ok {
		remote = c.RemoteAddr().String()
	}
	what := "it did not read its replies"
	if during == stallData {
		what = "it did not send the data block it announced"
	}
	s.stallLog.log(s.settings().Logger, slog.LevelWarn, "memcache: cut off a client: "+what, "remote", remote, "stall_timeout", after)
}

// storage reads the data block of a storage command and answers it. It
// reports whether the connection can go on, and the read error if reading
// the block failed.
func (s *Server) storage(r *bufio.Reader, w *bufio.Writer, cmd *Command) (bool, error) {
	maxValue := s.settings().MaxValueSize
	reply := func(result, line string) {
		s.Metrics.command(cmd.Name, result)
		if !cmd.NoReply {
			w.WriteString(line)
		}
	}
	if cmd.Bytes > int64(maxValue) {
		if cmd.Bytes > swallowLimit {
			s.Metrics.command(cmd.Name, "client_error")
			w.WriteString("SERVER_ERROR object too large for cache\r\n")
			return false, nil
		}
		if r.Buffered() < int(cmd.Bytes)+2 && w.Flush() != nil {
			return false, nil
		}
		if _, err := io.CopyN(io.Discard, r, cmd.Bytes+2); err != nil {
			return false, err
		}
		reply("too_large", "SERVER_ERROR object too large for cache\r\n")
		return true, nil
	}
	// Replies to earlier commands go out before waiting for the block.
	if r.Buffered() < int(cmd.Bytes)+2 && w.Flush() != nil {
		return false, nil
	}
	// A fresh buffer for each value: the Backend keeps it (no copy), and
	// an idle connection holds no value-sized buffer.
	n := int(cmd.Bytes) + 2
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return false, err
	}
	if buf[n-2] != '\r' || buf[n-1] != '\n' {
		// The client's framing is broken: we cannot find the next command.
		s.Metrics.command(cmd.Name, "client_error")
		w.WriteString("CLIENT_ERROR bad data chunk\r\n")
		return false, nil
	}
	if cmd.Name != "set" {
		reply("unsupported", "SERVER_ERROR "+cmd.Name+" is not supported by tlsring\r\n")
		return true, nil
	}
	if cmd.Flags != 0 {
		reply("client_error", "CLIENT_ERROR flags must be 0 (tlsring stores values as they are)\r\n")
		return true, nil
	}
	value := buf[: n-2 : n-2]
	ctx, cancel := s.ctx()
	defer cancel()
	ttl, live := s.ttl(cmd.Exptime)
	var err error
	if live {
		err = s.Backend.Set(ctx, cmd.Keys[0], value, ttl)
	} else {
		// Already expired: memcached stores it unreachable; drop the key.
		err = s.Backend.Delete(ctx, cmd.Keys[0])
	}
	if err != nil {
		s.settings().Logger.Debug("memcache: set failed", "err", err)
		reply("error", serverError(err))
		return true, nil
	}
	reply("stored", "STORED\r\n")
	return true, nil
}

// ttl converts a memcached exptime into a lifetime; live is false for a
// value that has already expired.
func (s *Server) ttl(exptime int64) (ttl time.Duration, live bool) {
	cfg := s.settings()
	maxTTL := cfg.MaxTTL
	switch {
	case exptime == 0:
		ttl = cfg.DefaultTTL
	case exptime < 0:
		return 0, false
	case exptime <= RelativeExptimeLimit:
		ttl = time.Duration(exptime) * time.Second
	default:
		secs := exptime - cfg.Now().Unix()
		if secs <= 0 {
			return 0, false
		}
		if secs > int64(maxTTL/time.Second) {
			return maxTTL, true
		}
		ttl = time.Duration(secs) * time.Second
	}
	return min(ttl, maxTTL), true
}

func (s *Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.settings().Timeout)
}

// serverError is the reply for a Backend error. The message is bounded
// and kept on one line.
func serverError(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	b := []byte(msg)
	for i, c := range b {
		if c < ' ' || c == 0x7f {
			b[i] = ' '
		}
	}
	return "SERVER_ERROR " + string(b) + "\r\n"
}

// command answers a command without a data block; false ends the
// connection.
func (s *Server) command(w *bufio.Writer, cmd *Command, sw *stallWriter) bool {
	switch cmd.Name {
	case "get", "gets":
		s.get(w, cmd, sw)
	case "delete":
		ctx, cancel := s.ctx()
		defer cancel()
		// Take tells whether the key was there and removes the copies;
		// of racing deletes at most one is told DELETED, which is what
		// Client.Take builds on. (A Delete after a NOT_FOUND Take, to
		// clear a copy the owner lost, would steal the copy a racing
		// winner is about to take, and both would lose.)
		_, err := s.Backend.Take(ctx, cmd.Keys[0])
		var result, line string
		switch {
		case err == nil:
			result, line = "deleted", "DELETED\r\n"
		case IsNotFound(err):
			result, line = "not_found", "NOT_FOUND\r\n"
		default:
			s.settings().Logger.Debug("memcache: delete failed", "err", err)
			result, line = "error", serverError(err)
		}
		s.Metrics.command(cmd.Name, result)
		if !cmd.NoReply {
			w.WriteString(line)
		}
	case "version":
		s.Metrics.command(cmd.Name, "ok")
		fmt.Fprintf(w, "VERSION %s\r\n", s.versionOr())
	case "verbosity":
		s.Metrics.command(cmd.Name, "ok")
		if !cmd.NoReply {
			w.WriteString("OK\r\n")
		}
	case "stats":
		s.Metrics.command(cmd.Name, "ok")
		s.mu.Lock()
		conns := len(s.conns)
		s.mu.Unlock()
		fmt.Fprintf(w, "STAT pid %d\r\nSTAT uptime %d\r\nSTAT time %d\r\nSTAT version %s\r\nSTAT curr_connections %d\r\nEND\r\n",
			os.Getpid(), int64(time.Since(s.start).Seconds()), time.Now().Unix(), s.versionOr(), conns)
	case "quit":
		s.Metrics.command(cmd.Name, "ok")
		return false
	default:
		s.Metrics.command(cmd.Name, "unsupported")
		w.WriteString("SERVER_ERROR " + cmd.Name + " is not supported by tlsring\r\n")
	}
	return true
}

// get answers get and gets. Each hit is written as soon as it is fetched,
// so a connection holds at most one value however many keys it asks for.
// A Backend error before any hit was written is the answer (SERVER_ERROR,
// as before for every single-key get); once a hit went out, a key whose
// lookup fails is answered as a miss, and the command counted as an error.
func (s *Server) get(w *bufio.Writer, cmd *Command, sw *stallWriter) {
	ctx, cancel := s.ctx()
	defer cancel()
	hits, failed := 0, 0
	var num [20]byte
	for _, k := range cmd.Keys {
		v, err := s.Backend.Get(ctx, k)
		if err != nil {
			if IsNotFound(err) {
				continue
			}
			s.settings().Logger.Debug("memcache: get failed", "err", err)
			if hits == 0 {
				s.Metrics.command(cmd.Name, "error")
				w.WriteString(serverError(err))
				return
			}
			failed++
			continue
		}
		hits++
		w.WriteString("VALUE ")
		w.Write(k)
		w.WriteString(" 0 ")
		w.Write(strconv.AppendInt(num[:0], int64(len(v)), 10))
		if cmd.Name == "gets" {
			w.WriteString(" 0")
		}
		w.WriteString("\r\n")
		w.Write(v)
		w.WriteString("\r\n")
		if sw.err != nil {
			// The client stopped taking replies: fetch nothing more for it.
			s.Metrics.command(cmd.Name, "error")
			return
		}
	}
	w.WriteString("END\r\n")
	switch {
	case failed > 0:
		s.Metrics.command(cmd.Name, "error")
	case hits > 0:
		s.Metrics.command(cmd.Name, "hit")
	default:
		s.Metrics.command(cmd.Name, "miss")
	}
}

func (s *Server) versionOr() string { return s.settings().Version }
