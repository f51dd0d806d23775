// version.go: `tlsring version`, what this binary is: module version, Go
// version, platform and the commit it was built from, as the Go toolchain
// recorded them (runtime/debug.ReadBuildInfo).

package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Prints the module version, the Go version, the platform and the VCS commit the binary was built from.", stdout, stderr)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(bi))
	return nil
}

// versionLine formats build info as one line, e.g.
// "tlsring v1.2.0 go1.26.8 linux/amd64 commit 0123abcd (2026-12-01T16:00:00Z, modified)".
// bi may be nil (a binary built without module support).
func versionLine(bi *debug.BuildInfo) string {
	version, goVersion := "unknown", runtime.Version()
	var rev, when string
	modified := false
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tlsring %s %s %s/%s", version, goVersion, runtime.GOOS, runtime.GOARCH)
	if rev != "" {
		fmt.Fprintf(&b, " commit %s", rev)
		var notes []string
		if when != "" {
			notes = append(notes, when)
		}
		if modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
		}
	}
	return b.String()
}
