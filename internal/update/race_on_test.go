//go:build race

package update

// raceEnabled: the race detector makes each helper process start slowly.
const raceEnabled = true
