// The static source (-members) and the members-file source (-members-file,
// re-read when told to, on SIGHUP), and the parsing and checks of member
// addresses they share with the other sources.

package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Static is a member list that never changes.
type Static []string

// SourceName returns "static", the source's name in logs and metrics.
func (Static) SourceName() string { return "static" }

// Run reports the list once and waits for ctx to end.
func (s Static) Run(ctx context.Context, update func(members []string)) error {
	update(Normalize(s))
	<-ctx.Done()
	return ctx.Err()
}

// File is a members file, read again each time Reload receives (the
// binary sends on SIGHUP). A file that cannot be read, parsed or checked
// is logged and counted, and the last good list stays.
type File struct {
	Path    string
	Reload  <-chan struct{}
	Logger  *slog.Logger // nil = slog.Default()
	Metrics *Metrics     // nil = not counted
}

// UseMetrics makes the source count its errors on m unless it has
// Metrics already; Follow calls it.
func (x *File) UseMetrics(m *Metrics) {
	if x.Metrics == nil {
		x.Metrics = m
	}
}

// SourceName returns "file", the source's name in logs and metrics.
func (*File) SourceName() string { return "file" }

// Run reads the file when Reload receives and reports its list when it
// changed, until ctx ends.
func (f *File) Run(ctx context.Context, update func(members []string)) error {
	log := f.Logger
	if log == nil {
		log = slog.Default()
	}
	var last []string
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.Reload:
		}
		members, err := ReadMembersFile(f.Path)
		if err != nil {
			f.Metrics.SourceError("file", "bad_file")
			log.Error("keeping the current members", "members_file", f.Path, "err", err)
			continue
		}
		log.Info("members file read", "members_file", f.Path, "members", members)
		if !slices.Equal(members, last) {
			last = members
			update(members)
		}
	}
}

// MaxFileSize bounds a members file.
const MaxFileSize = 1 << 20

// ReadMembersFile reads and checks a member list: host:port entries
// separated by commas, spaces or newlines; '#' starts a comment that runs
// to the end of its line. The file is bounded at MaxFileSize. The list is
// returned sorted, without duplicates.
func ReadMembersFile(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, errors.New("larger than 1 MiB")
	}
	members, err := ParseMembers(data)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if err := CheckAddr(m); err != nil {
			return nil, fmt.Errorf("member %q: %v", m, err)
		}
	}
	return Normalize(members), nil
}

// ParseMembers splits a member list: entries separated by commas, spaces
// or newlines, '#' comments to the end of the line. It does not check the
// entries (CheckAddr does).
func ParseMembers(data []byte) ([]string, error) {
	var members []string
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		members = append(members, strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\r'
		})...)
	}
	if len(members) == 0 {
		return nil, errors.New("lists no member")
	}
	return members, nil
}

// CheckAddr checks that a member address is host:port with a host and a
// port other than 0 (the address is the member's name: it must be
// dialable).
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("want host:port with a host other members can dial")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return errors.New("want a port between 1 and 65535")
	}
	return nil
}

// Normalize returns members sorted, without duplicates, in a new slice.
func Normalize(members []string) []string {
	out := slices.Clone(members)
	slices.Sort(out)
	return slices.Compact(out)
}
