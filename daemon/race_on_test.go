//go:build race

package daemon

// raceEnabled: the race detector's frames make every stack larger, so
// stack bounds are its own.
const raceEnabled = true
