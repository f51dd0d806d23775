//go:build !unix

// cpu_other.go: without getrusage, the demo does not report CPU time.

package main

import "time"

// processCPU reports that the process's CPU time is not available.
func processCPU() (time.Duration, bool) { return 0, false }
