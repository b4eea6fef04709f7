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
	queryapi "github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tracing/api"
	"github.com/sextant-dev/sextant/tracing/spanstore"
)

// docNow is NOW in the documented examples: 2024-05-01T00:00:00Z.
const docNow = int64(1714521600000)

// TestDocsExamples runs every curl example of docs/traces.md against the
// real parts (OTLP ingest, span store, span metrics in the time-series
// store, the Jaeger and exemplar APIs) with the clock at NOW, and
// compares each reply with the documented output.
func TestDocsExamples(t *testing.T) {
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
	traces, err := api.New(api.Options{Reader: spans, Catalog: spans, Dependencies: spans, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	queries, err := queryapi.New(queryapi.Options{Querier: store, StorageStep: 60_000, Now: now, Exemplars: spans.Exemplars})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ing.Register(mux)
	traces.Register(mux)
	queries.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc, err := os.ReadFile("../../docs/traces.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds, outputs := querytest.Examples(string(doc))
	for i, cmd := range cmds {
		got := querytest.Curl(t, srv.URL, cmd, docNow)
		if os.Getenv("DOCS_PRINT") != "" {
			fmt.Printf("---- example %d\n%s\n%s\n", i, cmd, got)
		} else if !querytest.SameOutput(outputs[i], got) {
			t.Errorf("docs/traces.md example %d:\n%s\ngot:\n%s\ndocumented:\n%s", i, cmd, got, outputs[i])
		}
	}
	if len(cmds) < 8 {
		t.Fatalf("found %d examples", len(cmds))
	}
}
