package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tracing/spanstore"
)

// TestPrometheusDocExamples runs every curl example of docs/prometheus.md
// against the real parts (publish and OTLP ingest, the store, the span
// store and its exemplars, the Prometheus API) with the clock at NOW, in
// order, and compares each reply with the documented output.
func TestPrometheusDocExamples(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.UnixMilli(docNow) }
	store := querytest.Open(t, 60_000, docNow)
	spans, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spans.Close() })
	ing, err := ingest.New(ingest.Options{Appender: store, Traces: spans, Exemplars: spans, Step: 60_000, Now: func() int64 { return docNow }})
	if err != nil {
		t.Fatal(err)
	}
	// Exemplars as cmd/sextant feeds them: from the span store.
	a, err := api.New(api.Options{Querier: store, StorageStep: 60_000, Now: now,
		Exemplars: spans.Exemplars})
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
