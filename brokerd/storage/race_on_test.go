//go:build race

package storage

// raceEnabled says the tests run under the race detector.
const raceEnabled = true
