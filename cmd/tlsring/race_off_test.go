//go:build !race

// race_off_test.go: the tests were built without -race.

package main

// raceEnabled: the tests build the binary without -race.
const raceEnabled = false
