package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
)

// docNow is NOW in the documented examples: 2024-05-01T00:00:00Z.
const docNow = int64(1714521600000)

// TestDocsExamples runs every curl example of the query API pages against
// a real server (publish, store, graph/tags/expr APIs) with its clock at
// NOW, and compares each reply with the documented output.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	store := querytest.Open(t, 60_000, docNow)
	ing, err := ingest.New(ingest.Options{Appender: store, Step: 60_000, Now: func() int64 { return docNow }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Options{Querier: store, StorageStep: 60_000, Now: func() time.Time { return time.UnixMilli(docNow) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ing.Register(mux)
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	examples := 0
	for _, page := range []string{"graph.md", "tags.md", "expr.md"} {
		doc, err := os.ReadFile("../../docs/" + page)
		if err != nil {
			t.Fatal(err)
		}
		cmds, outputs := querytest.Examples(string(doc))
		for i, code := range cmds {
			want := outputs[i]
			got := querytest.Curl(t, srv.URL, code, docNow)
			if os.Getenv("DOCS_PRINT") != "" {
				fmt.Printf("---- %s example %d\n%s\n%s", page, examples, code, got)
			} else if !querytest.SameOutput(want, got) {
				t.Errorf("%s example %d:\n%s\ngot:\n%s\ndocumented:\n%s", page, examples, code, got, want)
			}
			examples++
		}
	}
	if examples < 10 {
		t.Fatalf("found %d examples", examples)
	}
}
