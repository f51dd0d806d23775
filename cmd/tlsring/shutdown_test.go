// shutdown_test.go: a clean shutdown of `tlsring peer` logs no warning.

package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

// TestCleanShutdownLogsNoWarning runs two members in this process, each
// with a memcached face and an admin server, waits until both finished
// their state transfer, and stops the first while the second still runs:
// its log holds no WARN or ERROR line (no "context canceled" from work the
// shutdown itself cancels).
func TestCleanShutdownLogsNoWarning(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		if code, _, errs := runCmd("certs", "-dir", dir, "-name", n, "-hosts", "127.0.0.1"); code != 0 {
			t.Fatal(errs)
		}
	}
	addrs := transporttest.FreeUDPAddrs(t, 2)
	noEnv := func(string) (string, bool) { return "", false }
	type member struct {
		log    *syncBuffer
		cancel context.CancelFunc
		done   chan error
	}
	members := make([]*member, 2)
	for i, n := range []string{"a", "b"} {
		m := &member{log: &syncBuffer{}, done: make(chan error, 1)}
		cfg, err := parsePeerFlags([]string{"-listen", addrs[i], "-members", strings.Join(addrs, ","),
			"-cert", filepath.Join(dir, n+".pem"), "-key", filepath.Join(dir, n+"-key.pem"), "-ca", filepath.Join(dir, "ca.pem"),
			"-memcached", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-leave-timeout", "5s"}, noEnv, io.Discard, m.log)
		if err != nil {
			t.Fatal(err)
		}
		var ctx context.Context
		ctx, m.cancel = context.WithCancel(context.Background())
		go func() { m.done <- servePeer(ctx, cfg, nil, nil) }()
		members[i] = m
	}
	defer func() {
		for _, m := range members {
			m.cancel()
			<-m.done
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range members {
		for !strings.Contains(m.log.String(), "state transfer done") {
			if time.Now().After(deadline) {
				t.Fatalf("no state transfer done within 30 s:\n%s", m.log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	a := members[0]
	a.cancel()
	if err := <-a.done; err != nil {
		t.Fatalf("servePeer: %v", err)
	}
	a.done <- nil // for the deferred cleanup
	logged := a.log.String()
	if !strings.Contains(logged, "tlsring peer stopped") {
		t.Fatalf("no \"tlsring peer stopped\" in\n%s", logged)
	}
	for _, line := range strings.Split(logged, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("clean shutdown logged: %s", line)
		}
	}
}
