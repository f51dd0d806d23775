// memberlist logs through a *log.Logger with "[LEVEL] memberlist: ..."
// lines; logWriter turns each into a slog record at that level. One line
// is also an event memberlist has no other hook for: "Suspect NAME has
// failed, no acks received", this member's probes of NAME failing.

package gossip

import (
	"bytes"
	"context"
	"log/slog"
)

type logWriter struct {
	log     *slog.Logger
	suspect func(name string) // told of each suspicion line
}

var logLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG] ", slog.LevelDebug},
	{"[INFO] ", slog.LevelInfo},
	{"[WARN] ", slog.LevelWarn},
	{"[ERR] ", slog.LevelError},
	{"[ERROR] ", slog.LevelError},
}

func (w logWriter) Write(p []byte) (int, error) {
	n := len(p)
	p = bytes.TrimRight(p, "\n")
	level := slog.LevelInfo
	for _, l := range logLevels {
		if rest, ok := bytes.CutPrefix(p, []byte(l.prefix)); ok {
			p, level = rest, l.level
			break
		}
	}
	p, _ = bytes.CutPrefix(p, []byte("memberlist: "))
	if rest, ok := bytes.CutPrefix(p, []byte("Suspect ")); ok && w.suspect != nil {
		if name, ok := bytes.CutSuffix(rest, []byte(" has failed, no acks received")); ok {
			w.suspect(string(name))
		}
	}
	w.log.Log(context.Background(), level, "memberlist: "+string(p))
	return n, nil
}
