//go:build race

package head

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation budgets cannot be checked under it.
const raceEnabled = true
