//go:build !race

package main

// raceEnabled: the tests build the binary without -race.
const raceEnabled = false
