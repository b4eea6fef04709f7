package live

import (
	"context"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// countingQuerier records the steps each fetch covers.
type countingQuerier struct {
	tsdb.Querier
	mu    sync.Mutex
	steps []int64
}

func (q *countingQuerier) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	q.mu.Lock()
	q.steps = append(q.steps, (req.End-req.Start)/req.Step)
	q.mu.Unlock()
	return q.Querier.Fetch(ctx, req)
}

func (q *countingQuerier) take() []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.steps
	q.steps = nil
	return s
}

// TestCarryReadsOnlyTheWindow: a :des over a 3-step :rolling-sum, live for
// an hour, reads the child's window (3 steps + the new one) at every step
// after the first, and its values still equal the graph API's since the
// origin.
func TestCarryReadsOnlyTheWindow(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		"name,x,:eq,(,node,),:by,3,:rolling-sum,3,0.2,0.3,:des,$node,:legend",
		// :sdes restarts its two instances every N steps from the first
		// epoch-aligned period after the origin: 4 and 7 steps put the
		// restarts at different offsets from the backfill's start.
		"name,x,:eq,(,node,),:by,3,:rolling-sum,4,0.2,0.3,:sdes,$node,:legend",
		"name,x,:eq,(,node,),:by,3,:rolling-sum,7,0.1,0.5,:sdes,$node,:legend",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			testCarry(t, q)
		})
	}
}

func testCarry(t *testing.T, q string) {
	const step = int64(60_000)
	synctest.Test(t, func(t *testing.T) {
		now := time.Now().UnixMilli()
		vals := make([]float64, 200)
		for i := range vals {
			vals[i] = 50 + 20*math.Sin(float64(i)/5)
			if i%11 == 0 {
				vals[i] = math.NaN()
			}
		}
		store := querytest.Open(t, step, now, querytest.Input{Tags: tags.New("name", "x", "node", "a"), Start: now - 3600_000, Values: vals},
			querytest.Input{Tags: tags.New("name", "x", "node", "b"), Start: now - 600_000, Values: vals[:15]})
		cq := &countingQuerier{Querier: store}
		ev, err := New(Options{Querier: cq, StorageStep: step, Delay: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = ev.Run(ctx) })
		defer func() { cancel(); wg.Wait() }()
		var mu sync.Mutex
		var us []Update
		sub, err := ev.Subscribe(t.Context(), Request{Expr: q, Backfill: 30 * step}, func(u Update) {
			mu.Lock()
			us = append(us, u)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if sub.g.carry == nil {
			t.Fatal("the group does not carry its state")
		}
		time.Sleep(time.Duration(2*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		cq.take()
		time.Sleep(time.Duration(60*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		for _, n := range cq.take() {
			if n != 3 {
				t.Fatalf("a live step fetched %d steps, want the window of 3", n)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		start, end := us[0].End-30*step, us[len(us)-1].End
		got := map[string][]float64{}
		for _, u := range us {
			for _, l := range u.Lines {
				vs := got[l.Label]
				for int64(len(vs)) < (l.Start-start)/step {
					vs = append(vs, math.NaN())
				}
				got[l.Label] = append(vs, l.Values...)
			}
		}
		styles, _ := query.Parse(q, query.ParseOptions{})
		res, err := query.NewEngine(store, eval.Options{}).Eval(context.Background(), styles, eval.Range{Start: start, End: end, Step: step})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Lines) != 2 || len(got) != 2 {
			t.Fatalf("graph has %d lines, live %d; want 2", len(res.Lines), len(got))
		}
		for _, l := range res.Lines {
			g := got[l.Label]
			if len(g) != len(l.Values) {
				t.Fatalf("%s: %d values, graph %d", l.Label, len(g), len(l.Values))
			}
			for i := range g {
				if g[i] != l.Values[i] && !(math.IsNaN(g[i]) && math.IsNaN(l.Values[i])) {
					t.Fatalf("%s at %d: live %v, graph %v", l.Label, i, g[i], l.Values[i])
				}
			}
		}
	})
}
