package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/tsdb/db"
)

const testUsage = `Usage: sextant test rules FILE...

Runs alert rule unit tests (in the spirit of promtool test rules): each
file names rule files, input series in expanding notation, evaluation
times and the alerts expected to fire then. Exits 0 when all pass, 1 when
an expectation fails (a diff is printed), 2 for a file that cannot be used.
`

// testRules runs `sextant test rules FILE...` and returns the exit code.
func testRules(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "rules" {
		fmt.Fprint(stderr, testUsage)
		return 2
	}
	const day = 24 * 3600_000
	ok, err := alerting.RunRuleTests(context.Background(), args[1:], alerting.RuleTestOptions{
		Out: stdout,
		OpenStore: func(step int64) (alerting.TestStore, func() error, error) {
			// In memory, its clock well past any test's series, accepting
			// them however old.
			d, err := db.Open("", db.Options{Step: step, MemoryRetention: 400 * day, Retention: 400 * day,
				IngestMaxAge: 400 * day, MaxFuture: 400 * day, Now: func() int64 { return alerting.RuleTestStart + 30*day }})
			if err != nil {
				return nil, nil, err
			}
			return d, d.Close, nil
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "sextant: %v\n", err)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}
