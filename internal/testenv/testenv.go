// Package testenv is the one rule for tests that need a program from
// outside Go (openssl, Apache httpd, nginx, memcached): run by hand, a test
// whose program is missing is skipped with the command that installs it;
// under CI (CI=true, as .ci/run and most CI services set), it fails, so CI
// cannot pass without running it.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI: the CI environment variable
// is "true" or "1".
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Program returns the path of program (a name looked up in PATH, or an
// absolute path), or, when it is missing, skips tb (by hand) or fails it
// (under CI), saying how to install it: apt-get install pkg.
func Program(tb testing.TB, program, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		Missing(tb, program, pkg, err)
	}
	return path
}

// File checks that a file a test needs (an Apache module, say) exists, and
// otherwise skips or fails tb as Program does.
func File(tb testing.TB, path, pkg string) {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(tb, path, pkg, err)
	}
}

// Missing skips tb (by hand) or fails it (under CI) for a missing
// prerequisite what, with the command that installs pkg.
func Missing(tb testing.TB, what, pkg string, err error) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s is missing (%v) and CI=true: install it: apt-get install %s", what, err, pkg)
		return // Fatalf does not return; a recording TB's may
	}
	tb.Skipf("%s is missing (%v): install it to run this test: apt-get install %s (under CI=true this fails)", what, err, pkg)
}
