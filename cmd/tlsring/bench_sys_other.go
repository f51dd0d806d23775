//go:build !linux

// bench_sys_other.go: without Linux's parent-death signal, the bench's
// child processes are stopped only when it exits normally.

package main

import "syscall"

// childProcAttr has nothing to add outside Linux.
func childProcAttr() *syscall.SysProcAttr { return nil }
