//go:build race

package tags

// raceEnabled: the race detector allocates on its own, so allocation
// budgets are checked only without it.
const raceEnabled = true
