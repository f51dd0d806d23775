//go:build race

// race_on_test.go: the tests were built with -race.

package main

// raceEnabled: the tests build the binary with -race too.
const raceEnabled = true
