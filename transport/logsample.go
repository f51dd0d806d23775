// Sampled logging for events another party can cause at will (refused
// handshakes, malformed frames, peers cut off for not reading, handler
// panics): at most one line per kind and interval, each line carrying how
// many events went unlogged before it, so a flood costs a bounded amount of
// log output and CPU. Metrics carry the full numbers.

package transport

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LogInterval is the least time between two log lines about one kind of
// event a remote party can cause; the events in between are counted and
// reported with the next line as "unlogged".
const LogInterval = 10 * time.Second

// sampledLog lets one line through per interval and counts the rest.
type sampledLog struct {
	interval time.Duration // LogInterval; tests shorten it

	mu       sync.Mutex
	last     time.Time // when the last line was written; zero before the first
	unlogged int       // events since that line
}

// log writes msg at level with args, plus "unlogged" (the events not
// logged since the previous line) when there were any, unless a line was
// written less than the interval ago: then it only counts the event.
func (s *sampledLog) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	now := time.Now()
	s.mu.Lock()
	interval := s.interval
	if interval == 0 {
		interval = LogInterval
	}
	if !s.last.IsZero() && now.Sub(s.last) < interval {
		s.unlogged++
		s.mu.Unlock()
		return
	}
	s.last = now
	unlogged := s.unlogged
	s.unlogged = 0
	s.mu.Unlock()
	if unlogged > 0 {
		args = append(args, "unlogged_since_last", unlogged)
	}
	l.Log(context.Background(), level, msg, args...)
}
