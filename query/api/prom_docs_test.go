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

// TestPrometheusDocExamples runs every curl example of docs/prometheus.md
// against a real server (publish, store, Prometheus API) with its clock
// at NOW, in order, and compares each reply with the documented output.
func TestPrometheusDocExamples(t *testing.T) {
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
	doc, err := os.ReadFile("../../docs/prometheus.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds, outputs := querytest.Examples(string(doc))
	for i, code := range cmds {
		got := querytest.Curl(t, srv.URL, code, docNow)
		if os.Getenv("DOCS_PRINT") != "" {
			fmt.Printf("---- example %d\n%s\n%s", i, code, got)
		} else if !querytest.SameOutput(outputs[i], got) {
			t.Errorf("example %d:\n%s\ngot:\n%s\ndocumented:\n%s", i, code, got, outputs[i])
		}
	}
	if len(cmds) < 8 {
		t.Fatalf("found %d examples", len(cmds))
	}
}
