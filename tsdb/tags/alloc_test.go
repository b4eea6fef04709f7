package tags

import "testing"

// TestMatchesAllocs holds tag matching to its budget: evaluating a query
// against a series' tags, which the index falls back to for regular
// expressions and which ingest and the query API run per series, allocates
// nothing for any predicate. `make test` runs it without -race, which
// allocates on its own.
func TestMatchesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	re, err := Re("app", "^api")
	if err != nil {
		t.Fatal(err)
	}
	s := New("name", "requests", "app", "api-gateway", "region", "eu-west-1", "status", "200")
	for _, q := range []*Query{
		Eq("name", "requests"),
		And(Eq("name", "requests"), Not(Eq("status", "500"))),
		Or(Starts("app", "web"), re),
		In("region", []string{"us-east-1", "eu-west-1"}),
		And(Has("status"), Ge("status", "200")),
		Contains("app", "gate"),
	} {
		if a := testing.AllocsPerRun(100, func() { q.Matches(s) }); a != 0 {
			t.Errorf("%v.Matches allocates %v times, want 0", q, a)
		}
		if !q.Matches(s) {
			t.Errorf("%v does not match %v", q, s)
		}
	}
}
