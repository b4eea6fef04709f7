//go:build race

package chunk

// raceEnabled: the race detector instruments memory and allocates on its
// own, so allocation budgets are checked only without it (make test runs
// them in a separate pass without -race).
const raceEnabled = true
