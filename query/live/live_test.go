package live_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	step  = int64(60_000)
	delay = 5 * time.Second
)

// bubbleStart is the fake clock's start inside a synctest bubble.
var bubbleStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// fixture is a store holding two hours of data around the bubble's start
// (one before, one after: the store accepts the future), and a running
// evaluator over it.
type fixture struct {
	store  tsdb.Querier
	ev     *live.Evaluator
	engine *query.Engine
}

func newFixture(t *testing.T, opts live.Options) *fixture {
	t.Helper()
	from := bubbleStart - 3600_000
	var inputs []querytest.Input
	for i, node := range []string{"a", "b", "c"} {
		vals := make([]float64, 120)
		for j := range vals {
			vals[j] = float64(10*(i+1)) + 5*math.Sin(float64(j)/7+float64(i))
			if (j+i)%17 == 0 {
				vals[j] = math.NaN() // gaps
			}
		}
		inputs = append(inputs, querytest.Input{Tags: tags.New("name", "requests", "node", node), Start: from, Values: vals})
	}
	store := querytest.Open(t, step, bubbleStart, inputs...)
	opts.Querier, opts.StorageStep, opts.Delay = store, step, delay
	ev, err := live.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ev.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &fixture{store: store, ev: ev, engine: query.NewEngine(store, eval.Options{})}
}

// collector gathers updates and joins them per line.
type collector struct {
	mu      sync.Mutex
	updates []live.Update
}

func (c *collector) sink(u live.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updates = append(c.updates, u)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.updates)
}

// joined returns each line's values from start to the newest update's
// end, checking that updates follow each other without gap or overlap.
func (c *collector) joined(t *testing.T) (start, end int64, lines map[string][]float64, labels map[string]string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	lines, labels = map[string][]float64{}, map[string]string{}
	for i, u := range c.updates {
		if u.Err != nil {
			t.Fatalf("update %d: %v", i, u.Err)
		}
		ustart := int64(0)
		for _, l := range u.Lines {
			if l.End != u.End || l.Start+int64(len(l.Values))*l.Step != l.End {
				t.Fatalf("update %d: line %s covers [%d, %d) with %d values, update ends at %d", i, l.ID, l.Start, l.End, len(l.Values), u.End)
			}
			ustart = l.Start
		}
		if i == 0 {
			start = ustart
		} else if ustart != 0 && ustart != end {
			t.Fatalf("update %d starts at %d, previous ended at %d", i, ustart, end)
		}
		for _, l := range u.Lines {
			// a line first seen late is NaN before
			have := lines[l.ID]
			for int64(len(have)) < (l.Start-start)/l.Step {
				have = append(have, math.NaN())
			}
			lines[l.ID] = append(have, l.Values...)
			labels[l.ID] = l.Label
		}
		end = u.End
	}
	return start, end, lines, labels
}

// graph evaluates q over [start, end) as the graph API does, keyed by label.
func (f *fixture) graph(t *testing.T, q string, start, end, st int64) map[string][]float64 {
	t.Helper()
	styles, err := query.Parse(q, query.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.engine.Eval(context.Background(), styles, eval.Range{Start: start, End: end, Step: st})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, l := range res.Lines {
		out[l.Label] = l.Values
	}
	return out
}

func sameValues(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// checkAgainstGraph compares what c received with the graph API's answer
// over the same range.
func (f *fixture) checkAgainstGraph(t *testing.T, q string, c *collector, st int64) {
	t.Helper()
	start, end, lines, labels := c.joined(t)
	want := f.graph(t, q, start, end, st)
	if len(lines) != len(want) {
		t.Fatalf("%s: %d lines, graph has %d", q, len(lines), len(want))
	}
	for id, got := range lines {
		w, ok := want[labels[id]]
		if !ok {
			t.Fatalf("%s: line %q not in the graph's answer", q, labels[id])
		}
		for len(got) < len(w) {
			got = append(got, math.NaN())
		}
		if !sameValues(got, w) {
			t.Errorf("%s: line %q over [%d, %d):\n live %v\ngraph %v", q, labels[id], start, end, got, w)
		}
	}
}

// TestBackfillThenLive subscribes with backfill and checks the joined
// stream against the graph API, for plain and stateful expressions.
func TestBackfillThenLive(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		"name,requests,:eq,:sum",
		"name,requests,:eq,(,node,),:by",
		"name,requests,:eq,:sum,5,0.1,0.5,:des",
		"name,requests,:eq,(,node,),:by,3,:rolling-count",
		"name,requests,:eq,:max,4,2,:rolling-mean",
		"name,requests,:eq,:sum,:integral,2,:delay",
		"name,requests,:eq,(,node,),:by,$node,:legend",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, live.Options{})
				c := &collector{}
				sub, err := f.ev.Subscribe(t.Context(), live.Request{Expr: q, Backfill: 10 * step}, c.sink)
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				if c.len() != 1 {
					t.Fatalf("%d updates after subscribe, want the backfill", c.len())
				}
				time.Sleep(time.Duration(7*step) * time.Millisecond) // synctest: advances the bubble's fake clock
				synctest.Wait()
				if c.len() != 8 {
					t.Fatalf("%d updates after 7 steps, want 8", c.len())
				}
				f.checkAgainstGraph(t, q, c, step)
			})
		})
	}
}

// TestSharedEvaluation: many subscribers of one expression cost one
// evaluation per step, and each gets every step.
func TestSharedEvaluation(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, live.Options{})
		cs := make([]*collector, 50)
		for i := range cs {
			cs[i] = &collector{}
			q := "name,requests,:eq,:sum"
			if i%2 == 1 {
				q = " name,requests,:eq,  :sum " // same after normalization
			}
			if _, err := f.ev.Subscribe(t.Context(), live.Request{Expr: q}, cs[i].sink); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.ev.Expressions(); n != 1 {
			t.Fatalf("%d groups, want 1", n)
		}
		before := f.ev.Evaluations()
		time.Sleep(time.Duration(3*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := f.ev.Evaluations() - before; got != 3 {
			t.Errorf("%d evaluations for 3 steps of 50 subscribers, want 3", got)
		}
		for i, c := range cs {
			if c.len() != 3 {
				t.Errorf("subscriber %d got %d updates, want 3", i, c.len())
			}
		}
	})
}

// TestCloseStopsDelivery: after Close the sink is not called, and the
// group goes away with its last subscriber.
func TestCloseStopsDelivery(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, live.Options{})
		c := &collector{}
		ctx, cancel := context.WithCancel(t.Context())
		if _, err := f.ev.Subscribe(ctx, live.Request{Expr: "name,requests,:eq,:sum", Step: 2 * step}, c.sink); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(4*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		n := c.len()
		if n != 2 {
			t.Fatalf("%d updates over 4 storage steps at step 2, want 2", n)
		}
		cancel()
		synctest.Wait()
		if f.ev.Expressions() != 0 {
			t.Errorf("%d groups after the only subscriber left", f.ev.Expressions())
		}
		time.Sleep(time.Duration(4*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if c.len() != n {
			t.Errorf("%d updates after close, want %d", c.len(), n)
		}
	})
}

// TestBadRequests: a bad expression is a *stack.Error naming the word,
// a bad step a *RequestError, and the expression limit a *LimitError.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, live.Options{MaxExpressions: 1})
		_, err := f.ev.Subscribe(t.Context(), live.Request{Expr: "name,a,:eq,:frobnicate"}, func(live.Update) {})
		if se, ok := stack.AsError(err); !ok || se.Word != ":frobnicate" {
			t.Errorf("bad word: %v, want a *stack.Error naming :frobnicate", err)
		}
		var re *live.RequestError
		if _, err := f.ev.Subscribe(t.Context(), live.Request{Expr: "name,a,:eq", Step: 90_000}, func(live.Update) {}); !errors.As(err, &re) || re.Field != "step" {
			t.Errorf("bad step: %v, want a *RequestError on step", err)
		}
		if _, err := f.ev.Subscribe(t.Context(), live.Request{Expr: "name,a,:eq"}, func(live.Update) {}); err != nil {
			t.Fatal(err)
		}
		var le *live.LimitError
		if _, err := f.ev.Subscribe(t.Context(), live.Request{Expr: "name,b,:eq"}, func(live.Update) {}); !errors.As(err, &le) {
			t.Errorf("second expression over a limit of 1: %v, want a *LimitError", err)
		}
	})
}
