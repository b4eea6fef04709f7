package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/alerting/api"
	"github.com/sextant-dev/sextant/alerting/notify"
	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// docNow is NOW in the documented examples: 2024-05-01T00:00:00Z.
const docNow = int64(1714521600000)

// TestDocsExamples runs the curl examples of docs/alerting.md against a
// real store and the alerting API with its clock at NOW, and checks that
// the YAML blocks parse: rule files as rules, the routing example as an
// alerting config, the unit test as the one under cmd/sextant/testdata.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	store := querytest.Open(t, 60_000, docNow)
	ing, err := ingest.New(ingest.Options{Appender: store, Step: 60_000, Now: func() int64 { return docNow }})
	if err != nil {
		t.Fatal(err)
	}
	kv := tsdbtest.NewKV()
	now := func() time.Time { return time.UnixMilli(docNow) }
	engine := query.NewEngine(store, eval.Options{})
	src := alerting.NewPollSource(engine, alerting.PollOptions{Now: now})
	m, err := alerting.New(alerting.Options{Subscribe: src.Subscribe, KV: kv, Step: 60_000, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sil, err := alerting.OpenSilences(context.Background(), kv, now)
	if err != nil {
		t.Fatal(err)
	}
	var routing *notify.Config
	for _, block := range yamlBlocks(string(doc)) {
		switch {
		case strings.HasPrefix(block, "groups:"):
			if _, err := alerting.ParseFile("doc.yaml", []byte(block), alerting.ParseOptions{Step: 60_000}); err != nil {
				t.Errorf("rule file of the docs: %v", err)
			}
		case strings.HasPrefix(block, "route:"):
			if routing, err = notify.ParseConfig([]byte(block)); err != nil {
				t.Errorf("alerting config of the docs: %v", err)
			}
		case strings.HasPrefix(block, "rule_files:"):
			b, err := os.ReadFile("../../cmd/sextant/testdata/rules/hosts_test.yaml")
			if err != nil || string(b) != block {
				t.Errorf("the unit test of the docs is not cmd/sextant/testdata/rules/hosts_test.yaml (%v)", err)
			}
		default:
			var v any
			if err := yaml.Unmarshal([]byte(block), &v); err != nil {
				t.Errorf("yaml block of the docs: %v", err)
			}
		}
	}
	if routing == nil {
		t.Fatal("no routing example")
	}
	a, err := api.New(api.Options{Manager: m, Silences: sil, Step: 60_000, Now: now,
		Backtest: func(ctx context.Context, r *alerting.Rule, start, end int64) (*alerting.BacktestResult, error) {
			return alerting.Backtest(ctx, engine, r, start, end, alerting.BacktestOptions{Step: 60_000,
				Simulate: func(steps []alerting.SimStep) int { return notify.Simulate(routing, steps) }})
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ing.Register(mux)
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cmds, outputs := querytest.Examples(string(doc))
	for i, code := range cmds {
		got := querytest.Curl(t, srv.URL, code, docNow)
		if os.Getenv("DOCS_PRINT") != "" {
			fmt.Printf("---- example %d\n%s\n%s", i, code, got)
		} else if !querytest.SameOutput(outputs[i], got) {
			t.Errorf("example %d:\n%s\ngot:\n%s\ndocumented:\n%s", i, code, got, outputs[i])
		}
	}
	if len(cmds) < 4 {
		t.Fatalf("found %d examples", len(cmds))
	}
}

// yamlBlocks returns the ```yaml blocks of a page.
func yamlBlocks(doc string) []string {
	var out []string
	blocks := strings.Split(doc, "```")
	for i := 1; i < len(blocks); i += 2 {
		if b, ok := strings.CutPrefix(blocks[i], "yaml\n"); ok {
			out = append(out, b)
		}
	}
	return out
}
