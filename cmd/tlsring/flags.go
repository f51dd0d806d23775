// flags.go: flag helpers shared by the subcommands: TLSRING_* environment
// variables as flag defaults, byte sizes, file modes, and log setup.

package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
)

// envPrefix prefixes the environment variable of every flag.
const envPrefix = "TLSRING_"

// envName is the environment variable that sets flag name:
// "max-bytes" is TLSRING_MAX_BYTES.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnv sets every flag of fs not given on the command line from its
// environment variable, if that is set: flags win over the environment.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = usagef("%s=%q: %v", envName(f.Name), v, e)
		}
	})
	return err
}

// envHelp describes the environment variables of fs, for -h.
func envHelp(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, envName(f.Name)) })
	return "Every flag can also be set through an environment variable (flags win):\n  " + strings.Join(names, ", ")
}

// byteSize is a flag.Value for sizes in bytes: "1048576", "512KiB",
// "64MiB", "1GiB" (K, M, G, KB, MB, GB are accepted as binary multiples too).
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Set parses a size: digits, then optionally a unit, with ASCII spaces
// around them.
func (b *byteSize) Set(s string) error {
	s = strings.Trim(s, " \t")
	shift := uint(0)
	for _, u := range []struct {
		suffixes []string
		shift    uint
	}{{[]string{"GIB", "GB", "G"}, 30}, {[]string{"MIB", "MB", "M"}, 20}, {[]string{"KIB", "KB", "K"}, 10}, {[]string{"B"}, 0}} {
		for _, suf := range u.suffixes {
			// Compared byte for byte, so that a multi-byte character
			// never passes for part of the unit.
			if len(s) >= len(suf) && strings.EqualFold(s[len(s)-len(suf):], suf) {
				s, shift = strings.TrimRight(s[:len(s)-len(suf)], " \t"), u.shift
				goto parse
			}
		}
	}
parse:
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size in bytes such as 67108864, 512KiB or 64MiB")
	}
	if n > (1<<62)>>shift {
		return fmt.Errorf("size too large")
	}
	*b = byteSize(n << shift)
	return nil
}

// fileMode is a flag.Value for permission bits in octal: "0660", "600".
type fileMode fs.FileMode

func (m *fileMode) String() string { return fmt.Sprintf("%#o", uint32(*m)) }

func (m *fileMode) Set(s string) error {
	n, err := strconv.ParseUint(strings.Trim(s, " \t"), 8, 32)
	if err != nil || n == 0 || n > 0o777 {
		return fmt.Errorf("want permission bits in octal such as 0660 or 0600")
	}
	*m = fileMode(n)
	return nil
}

// newLogger returns a slog logger writing to w at level ("debug", "info",
// "warn" or "error") in format ("text" or "json").
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts.ReplaceAttr = durationString
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("-log-format %q: want text or json", format)
}

// durationString makes JSON logs write durations as the text logs do
// ("1.5s"), not as integer nanoseconds.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
