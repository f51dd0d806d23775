// bench_memcached.go: the memcached process `tlsring bench` starts for its
// memcached rows, and the CPU time of another process read from /proc.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memcachedProc is a memcached the bench started.
type memcachedProc struct {
	cmd     *exec.Cmd
	addr    string
	version string
	stderr  bytes.Buffer
	exited  chan struct{}
}

// startMemcached starts the memcached binary bin (looked up in PATH) on a
// free loopback TCP port with its default 4 threads, and waits until it
// answers.
func startMemcached(ctx context.Context, bin string) (*memcachedProc, error) {
	if bin == "" || bin == "off" {
		return nil, errors.New("memcached turned off (-memcached off)")
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("memcached not found (%v; on Debian: apt-get install memcached)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256"}
	if os.Geteuid() == 0 { // memcached refuses to run as root without -u
		name := "root"
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		args = append(args, "-u", name)
	}
	m := &memcachedProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	m.cmd = exec.Command(path, args...)
	m.cmd.Stderr = &m.stderr
	m.cmd.SysProcAttr = childProcAttr()
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := memcachedVersion(m.addr)
		if err == nil {
			m.version = v
			return m, nil
		}
		select {
		case <-m.exited:
			return nil, fmt.Errorf("%s exited at start: %s", path, strings.TrimSpace(m.stderr.String()))
		case <-ctx.Done():
			m.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("%s did not answer on %s within 5s: %v", path, m.addr, err)
		}
	}
}

// memcachedVersion asks the memcached at addr for its version.
func memcachedVersion(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "VERSION ")
	if !ok {
		return "", fmt.Errorf("memcached answered %q to version", line)
	}
	return v, nil
}

// pid is the memcached process's ID.
func (m *memcachedProc) pid() int { return m.cmd.Process.Pid }

// stop ends memcached: SIGTERM, then SIGKILL after 2 s.
func (m *memcachedProc) stop() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(2 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
}

// otherProcessCPU returns the CPU time process pid has used, every thread
// counted: the sum of the threads' /proc/<pid>/task/<tid>/schedstat run
// times (nanoseconds), or, where the kernel has no schedstat, utime+stime
// from /proc/<pid>/stat (clock ticks, assumed 100 per second: coarse).
func otherProcessCPU(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err == nil && len(tasks) > 0 {
		var sum time.Duration
		ok := false
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue // a thread that just exited
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				continue
			}
			ns, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			sum += time.Duration(ns)
			ok = true
		}
		if ok {
			return sum, nil
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')') // the command name, in parentheses, may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
