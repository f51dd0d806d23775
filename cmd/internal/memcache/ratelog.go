// ratelog.go: logs that a remote party cannot multiply: at most one line
// per kind of event and interval, carrying how many were left out.

package memcache

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logInterval is the least time between two log lines of one kind of event
// a client can cause (refusals, reclaims, stalls); metrics count them all.
const logInterval = 10 * time.Second

// logLimiter lets one line through per logInterval and counts the others.
// The zero value is ready.
type logLimiter struct {
	mu      sync.Mutex
	next    time.Time
	dropped int
}

// log writes msg at level unless a line went out less than logInterval
// ago; a line that goes out carries the number of lines left out since the
// previous one ("suppressed").
func (l *logLimiter) log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Before(l.next) {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.dropped = 0
	l.next = now.Add(logInterval)
	l.mu.Unlock()
	log.Log(context.Background(), level, msg, append(args, "suppressed", dropped)...)
}
