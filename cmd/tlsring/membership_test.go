// membership_test.go: the flags of `tlsring peer -membership`, parsed.

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer/membership"
)

func TestMembershipFlags(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runCmd("certs", "-dir", dir, "-name", "a", "-hosts", "127.0.0.1"); code != 0 {
		t.Fatal(errs)
	}
	file := filepath.Join(dir, "members")
	writeFile(t, file, "127.0.0.1:7002\n127.0.0.1:7001\n")
	parse := func(args ...string) (*peerConfig, error) {
		var out, errs bytes.Buffer
		base := []string{"-listen", "127.0.0.1:7001", "-cert", filepath.Join(dir, "a.pem"), "-key", filepath.Join(dir, "a-key.pem"), "-ca", filepath.Join(dir, "ca.pem")}
		return parsePeerFlags(append(base, args...), func(string) (string, bool) { return "", false }, &out, &errs)
	}
	for _, tc := range []struct {
		args    []string
		mode    string
		grace   time.Duration
		members []string
	}{
		{nil, "static", -1, []string{"127.0.0.1:7001"}},
		{[]string{"-members", "127.0.0.1:7001,127.0.0.1:7002"}, "static", -1, []string{"127.0.0.1:7001", "127.0.0.1:7002"}},
		{[]string{"-members-file", file}, "file", -1, []string{"127.0.0.1:7001", "127.0.0.1:7002"}},
		{[]string{"-membership", "file", "-members-file", file, "-membership-grace", "5s"}, "file", 5 * time.Second, []string{"127.0.0.1:7001", "127.0.0.1:7002"}},
		{[]string{"-membership", "dns", "-dns-name", "_quic._udp.ring.example", "-dns-server", "127.0.0.1:53"}, "dns", membership.DefaultGrace, []string{"127.0.0.1:7001"}},
		{[]string{"-membership", "dns", "-dns-name", "ring.example:7001", "-dns-server", "127.0.0.1:53", "-membership-grace", "0s"}, "dns", -1, []string{"127.0.0.1:7001"}},
	} {
		cfg, err := parse(tc.args...)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if cfg.membership.mode != tc.mode || cfg.membership.grace != tc.grace || !slices.Equal(cfg.members, tc.members) {
			t.Errorf("%v: mode %q grace %v members %v; want %q %v %v", tc.args, cfg.membership.mode, cfg.membership.grace, cfg.members, tc.mode, tc.grace, tc.members)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-membership", "carrier-pigeon"}, `-membership "carrier-pigeon": want static, file, dns or gossip`},
		{[]string{"-membership", "file"}, "-membership file needs -members-file"},
		{[]string{"-membership", "static", "-members-file", file}, "-members-file needs -membership file"},
		{[]string{"-membership", "dns"}, "-membership dns needs -dns-name"},
		{[]string{"-membership", "dns", "-dns-name", "x.example:7001", "-members", "127.0.0.1:7001"}, "drop -members"},
		{[]string{"-membership", "dns", "-dns-name", "x.example:0", "-dns-server", "127.0.0.1:53"}, "want a port between 1 and 65535"},
		{[]string{"-membership", "dns", "-dns-name", "x.example", "-dns-server", "127.0.0.1"}, "dns server"},
		{[]string{"-membership", "dns", "-dns-name", "x.example", "-dns-interval", "0s"}, "want positive durations"},
		{[]string{"-dns-name", "x.example"}, "-dns-name needs -membership dns"},
		{[]string{"-membership-grace", "-1s"}, "-membership-grace -1s: want a duration of 0 or more"},
	} {
		_, err := parse(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	writeFile(t, file, "127.0.0.1:7002\n")
	if _, err := parse("-members-file", file); err == nil || !strings.Contains(err.Error(), "does not include -listen") {
		t.Errorf("a members file without this member: %v", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
