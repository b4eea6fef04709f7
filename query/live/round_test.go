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
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestRoundSharesFetches: groups whose expressions read the same data
// (rules that differ in their threshold) cost one fetch per step between
// them, and each still gets the graph API's values.
func TestRoundSharesFetches(t *testing.T) {
	t.Parallel()
	const step = int64(60_000)
	synctest.Test(t, func(t *testing.T) {
		now := time.Now().UnixMilli()
		var inputs []querytest.Input
		for i, node := range []string{"a", "b", "c"} {
			vals := make([]float64, 120)
			for j := range vals {
				vals[j] = 25 + 10*math.Sin(float64(j+7*i)/4)
			}
			inputs = append(inputs, querytest.Input{Tags: tags.New("name", "x", "node", node), Start: now - 3600_000, Values: vals})
		}
		store := querytest.Open(t, step, now, inputs...)
		cq := &countingQuerier{Querier: store}
		ev, err := New(Options{Querier: cq, StorageStep: step, Delay: time.Second, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = ev.Run(ctx) })
		defer func() { cancel(); wg.Wait() }()
		qs := []string{"name,x,:eq,(,node,),:by,20,:gt", "name,x,:eq,(,node,),:by,25,:gt", "name,x,:eq,(,node,),:by,30,:lt"}
		var mu sync.Mutex
		got := make([]map[string][]float64, len(qs))
		first := ev.LastClosed(step) + step // the first live point
		for i, q := range qs {
			got[i] = map[string][]float64{}
			sub, err := ev.Subscribe(t.Context(), Request{Expr: q}, func(u Update) {
				mu.Lock()
				defer mu.Unlock()
				for _, l := range u.Lines {
					got[i][l.Label] = append(got[i][l.Label], l.Values...)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
		}
		time.Sleep(time.Duration(5*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if n := len(cq.take()); n != 5 {
			t.Errorf("%d fetches for 5 steps of 3 expressions over one data expression, want 5", n)
		}
		mu.Lock()
		defer mu.Unlock()
		engine := query.NewEngine(store, eval.Options{})
		for i, q := range qs {
			styles, _ := query.Parse(q, query.ParseOptions{})
			res, err := engine.Eval(context.Background(), styles, eval.Range{Start: first, End: first + 5*step, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range res.Lines {
				g := got[i][l.Label]
				if len(g) != len(l.Values) {
					t.Fatalf("%s %s: %d live values, graph %d", q, l.Label, len(g), len(l.Values))
				}
				for j := range g {
					if g[j] != l.Values[j] && !(math.IsNaN(g[j]) && math.IsNaN(l.Values[j])) {
						t.Errorf("%s %s at %d: live %v, graph %v", q, l.Label, j, g[j], l.Values[j])
					}
				}
			}
		}
	})
}
