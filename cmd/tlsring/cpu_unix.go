//go:build unix

// cpu_unix.go: the process's CPU time, for the demo's per-handshake cost.

package main

import (
	"syscall"
	"time"
)

// processCPU returns the user plus system CPU time this process has used
// (getrusage RUSAGE_SELF), and whether it is available.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
