//go:build linux

// bench_sys_linux.go: the bench's child processes (clients, memcached) die
// with it, even when it is killed.

package main

import "syscall"

// childProcAttr makes a child process get SIGKILL when the bench exits.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
