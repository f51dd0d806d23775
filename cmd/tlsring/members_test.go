// members_test.go: `tlsring peer -members-file` and SIGHUP: membership
// changes without a restart, in real processes.

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer/membership"
)

func TestReadMembersFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	got, err := membership.ReadMembersFile(write("ok", "# the ring\n10.0.0.1:7946, 10.0.0.2:7946\r\n\n10.0.0.3:7946 # rack b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("members = %q, want %q", got, want)
	}
	for name, text := range map[string]string{"empty": "", "comments": "# nobody\n\n"} {
		if _, err := membership.ReadMembersFile(write(name, text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := membership.ReadMembersFile(write("huge", strings.Repeat("a", 1<<20+1))); err == nil {
		t.Error("a file over 1 MiB was accepted")
	}
	if _, err := membership.ReadMembersFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was accepted")
	}
	code, _, stderr := runCmd("peer", "-listen", "127.0.0.1:7000", "-members", "127.0.0.1:7000", "-members-file", write("both", "127.0.0.1:7000"), "-cert", "x", "-key", "y", "-ca", "z")
	if code != 2 || !strings.Contains(stderr, "exclusive") {
		t.Errorf("-members with -members-file: exit %d, %q", code, stderr)
	}
}

// TestMembersFileReload: a member started alone with -members-file joins a
// second member on SIGHUP, and shrugs off a broken file and a list without
// itself.
func TestMembersFileReload(t *testing.T) {
	bin := tlsringBinary(t)
	dir := t.TempDir()
	procs := make([]*peerProc, 2)
	for i, name := range []string{"a", "b"} {
		if out, err := runBin(bin, "certs", "-dir", dir, "-name", name, "-hosts", "127.0.0.1"); err != nil {
			t.Fatalf("tlsring certs: %v\n%s", err, out)
		}
		port, err := freeUDPPort()
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = &peerProc{name: addr(port), admin: addr(freeTCPPort(t))}
	}
	a, b := procs[0], procs[1]
	file := filepath.Join(dir, "members")
	if err := os.WriteFile(file, []byte(a.name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := func(name string) []string {
		return []string{"-cert", filepath.Join(dir, name+".pem"), "-key", filepath.Join(dir, name+"-key.pem"), "-ca", filepath.Join(dir, "ca.pem")}
	}
	a.args = append([]string{"peer", "-listen", a.name, "-members-file", file, "-admin", a.admin}, common("a")...)
	b.args = append([]string{"peer", "-listen", b.name, "-members", a.name + "," + b.name, "-admin", b.admin}, common("b")...)
	for _, pp := range procs {
		pp.start(t, bin)
	}
	t.Cleanup(func() {
		for _, pp := range procs {
			pp.kill()
			if t.Failed() {
				t.Logf("logs of %s:\n%s", pp.name, pp.logs)
			}
		}
	})
	for _, pp := range procs {
		pp.waitHealthy(t)
	}
	members := func() float64 { return metric(t, "http://"+a.admin+"/metrics", "tlsring_peer_members") }
	if got := members(); got != 1 {
		t.Fatalf("a starts with %v members, want 1", got)
	}

	if err := os.WriteFile(file, []byte("# grown\n"+a.name+"\n"+b.name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a to apply the grown member list", func() (bool, string) {
		n := members()
		return n == 2, fmt.Sprint("members ", n)
	})
	waitFor(t, 10*time.Second, "a to finish rebalancing", func() (bool, string) {
		return metric(t, "http://"+a.admin+"/metrics", "tlsring_peer_rebalances_total") >= 1, ""
	})

	// A broken file is logged and ignored: the ring stays as it is.
	if err := os.WriteFile(file, []byte("not-an-address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a to log the broken member list", func() (bool, string) {
		return strings.Contains(a.logs.String(), "keeping the current members"), ""
	})
	if got := members(); got != 2 {
		t.Fatalf("after a broken file a has %v members, want 2", got)
	}
	// A list without this member is refused, as at start.
	if err := os.WriteFile(file, []byte(b.name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a to refuse a member list without itself", func() (bool, string) {
		return strings.Contains(a.logs.String(), "does not include this member"), ""
	})
	if got := members(); got != 2 {
		t.Fatalf("after a list without itself a has %v members, want 2", got)
	}
	a.waitHealthy(t)
}

// runBin runs the built binary and returns its combined output.
func runBin(bin string, args ...string) ([]byte, error) {
	return exec.Command(bin, args...).CombinedOutput()
}
