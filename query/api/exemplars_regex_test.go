package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/tracing"
)

// TestExemplarsBacktrackingRegexNeverDropsSilently: a backtracking regex
// (Java-only syntax) that runs out of work on an exemplar series' value
// fails the request with a 422 naming the budget; it used to count as "no
// match" and leave that series' exemplars out of a 200.
func TestExemplarsBacktrackingRegexNeverDropsSilently(t *testing.T) {
	t.Parallel()
	start := t0 + 23*3600_000
	vals := []float64{1, 2, 3, 4, 5}
	// The alternative x+z matches the exemplar series' value, but only after
	// the first one has backtracked through about 2^40 ways.
	slow := strings.Repeat("x", 40) + "z"
	exs := []tracing.Exemplar{
		{Tags: map[string]string{"service.name": "frontend"}, T: start + 120_000, Duration: time.Second},
		{Tags: map[string]string{"service.name": slow}, T: start + 180_000, Duration: 2 * time.Second},
	}
	e := newEnv(t, api.Options{Exemplars: func(context.Context, int64, int64) ([]tracing.Exemplar, error) { return exs, nil }},
		series(start, vals, "name", "span.duration", "statistic", "max", "service.name", "frontend"))
	q := `name,span.duration,:eq,service.name,(?=x)(x+x+)+y|x+z|frontend,:re,:and,:max`
	code, _, body := e.get(t, "/api/v1/exemplars", "q", q, "s", "e-1h", "e", "now", "step", "60s")
	if code != 422 || !strings.Contains(string(body), "max-regex-time-per-query") {
		t.Errorf("exemplars with a regex out of budget = %d %s, want 422 naming max-regex-time-per-query", code, body)
	}
	// The same query without the costly alternative answers both exemplars.
	q = `name,span.duration,:eq,service.name,(?=x)x+z|frontend,:re,:and,:max`
	code, _, body = e.get(t, "/api/v1/exemplars", "q", q, "s", "e-1h", "e", "now", "step", "60s")
	if code != 200 || strings.Count(string(body), `"traceID"`) != 2 {
		t.Errorf("exemplars with a cheap backtracking regex = %d %s, want 200 with both exemplars", code, body)
	}
}
