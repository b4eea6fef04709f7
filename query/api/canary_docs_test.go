package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/canary"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

var runID = regexp.MustCompile(`"id":"[0-9a-f]{16}"`)

// TestCanaryDocsExamples runs the curl examples of docs/canary.md against
// a real store behind the publish and canary APIs, with the clock at NOW,
// and compares each reply with the documented output (JSON by value, so
// the page may indent it).
func TestCanaryDocsExamples(t *testing.T) {
	t.Parallel()
	clock := func() time.Time { return time.UnixMilli(docNow) }
	store := querytest.Open(t, 60_000, docNow)
	ing, err := ingest.New(ingest.Options{Appender: store, Step: 60_000, Now: func() int64 { return docNow }})
	if err != nil {
		t.Fatal(err)
	}
	j, err := canary.New(canary.Options{Querier: store, StorageStep: 60_000, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := canary.NewRunner(canary.RunnerOptions{Judge: j, KV: tsdbtest.NewKV(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewCanary(api.CanaryOptions{Judge: j, Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ing.Register(mux)
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc, err := os.ReadFile("../../docs/canary.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds, outputs := querytest.Examples(string(doc))
	for i, code := range cmds {
		// Run ids are random; the page writes <id>.
		got := runID.ReplaceAllString(querytest.Curl(t, srv.URL, code, docNow), `"id":"<id>"`)
		if os.Getenv("DOCS_PRINT") != "" {
			fmt.Printf("---- example %d\n%s\n%s\n", i, code, got)
			continue
		}
		want := strings.TrimPrefix(outputs[i], "json\n")
		var w, g any
		if json.Unmarshal([]byte(want), &w) == nil && json.Unmarshal([]byte(got), &g) == nil {
			if d := cmp.Diff(w, g); d != "" {
				t.Errorf("example %d:\n%s\n(-documented +got):\n%s", i, code, d)
			}
		} else if !querytest.SameOutput(want, got) {
			t.Errorf("example %d:\n%s\ngot:\n%s\ndocumented:\n%s", i, code, got, want)
		}
	}
	if len(cmds) < 4 {
		t.Fatalf("found %d examples", len(cmds))
	}
}
