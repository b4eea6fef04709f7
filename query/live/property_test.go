package live

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// statefulSuffixes wrap an example in a stateful word, so state is
// carried across live steps in many shapes.
var statefulSuffixes = []string{
	"", "", ",3,:rolling-count", ",5,0.1,0.5,:des", ",:integral", ",2,:delay", ",:derivative",
	",4,2,:rolling-mean", ",3m,:trend", ",4,0.1,0.5,:sdes", ",:cumulative-max", ",3,:rolling-max",
}

// TestLiveEqualsGraph is the property: for random expressions built from
// the examples of every vocabulary word (each optionally wrapped in a
// stateful word), the steps a subscription receives, backfill then live,
// equal /api/v1/graph's evaluation over the same range, value for value.
// Expressions whose words summarize their range (see summarizes) are
// evaluated over the window by design and are left out.
func TestLiveEqualsGraph(t *testing.T) {
	t.Parallel()
	const step = int64(60_000)
	rng := rand.New(rand.NewPCG(1, 2))
	var programs []string
	for _, v := range expr.Vocabularies {
		for _, w := range v.Words {
			for _, ex := range w.Examples {
				if strings.HasPrefix(ex, "ERROR:") {
					continue
				}
				p := ":" + w.Name
				if ex != "" {
					p = ex + "," + p
				}
				programs = append(programs, p, p+statefulSuffixes[rng.IntN(len(statefulSuffixes))])
			}
		}
	}
	synctest.Test(t, func(t *testing.T) {
		now := time.Now().UnixMilli()
		from := now - 3*3600_000
		var inputs []querytest.Input
		for i, app := range []string{"www", "api", "db"} {
			for j, node := range []string{"i-1", "i-2"} {
				for _, name := range []string{"sps", "requestsPerSecond", "cpu", "uniqueUsers"} {
					vals := make([]float64, 4*60)
					for k := range vals {
						vals[k] = float64(20_000*(i+1)+1000*j) + 10_000*math.Sin(float64(k)/9+float64(i+j))
						if (k+i+j)%23 == 0 {
							vals[k] = math.NaN()
						}
					}
					inputs = append(inputs, querytest.Input{Start: from, Values: vals, Tags: tags.New("name", name, "nf.app", app,
						"nf.node", node, "nf.cluster", app+"-main", "nf.region", []string{"us-east-1", "eu-west-1"}[j], "status", fmt.Sprint(200+100*i))})
				}
				// An OTLP histogram (issue #10): two percentile buckets and
				// its min and max, which :percentiles clamps to step by
				// step; the min is missing at some steps.
				lat := func(f func(k int) float64, kv ...string) {
					vals := make([]float64, 4*60)
					for k := range vals {
						vals[k] = f(k)
					}
					inputs = append(inputs, querytest.Input{Start: from, Values: vals,
						Tags: tags.New(append([]string{"name", "requestLatency", "nf.app", app, "nf.node", node}, kv...)...)})
				}
				lat(func(k int) float64 { return float64(1 + (k+i)%5) }, "statistic", "percentile", "percentile", "T0064")
				lat(func(k int) float64 { return float64(1 + (k+j)%3) }, "statistic", "percentile", "percentile", "T0065")
				lat(func(k int) float64 {
					if (k+i)%7 == 0 {
						return math.NaN()
					}
					return 0.0100 + 0.0001*float64((k+j)%4)
				}, "statistic", "min", "atlas.dstype", "min-gauge")
				lat(func(k int) float64 { return 0.0120 + 0.0001*float64((k+i)%3) }, "statistic", "max", "atlas.dstype", "gauge")
			}
		}
		store := querytest.Open(t, step, now, inputs...)
		ev, err := New(Options{Querier: store, StorageStep: step, Delay: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = ev.Run(ctx) })
		defer func() {
			cancel()
			wg.Wait()
			// regexp2's clock (lookaround patterns of the examples) runs a
			// while after the last match: let the bubble's time pass it.
			time.Sleep(time.Hour) // synctest: advances the bubble's fake clock
		}()

		type sub struct {
			q  string
			mu sync.Mutex
			us []Update
		}
		var subs, perStep []*sub
		skipped := 0
		for _, p := range programs {
			styles, err := query.Parse(p, query.ParseOptions{})
			if err != nil {
				continue // an example that leaves no time series
			}
			s := &sub{q: p}
			if summarizes(styles, step) {
				skipped++
				if memoryOf(styles, step) == 0 {
					// Evaluated one step at a time: each step equals a
					// graph of that one step.
					if _, err := ev.Subscribe(t.Context(), Request{Expr: p}, func(u Update) {
						s.mu.Lock()
						s.us = append(s.us, u)
						s.mu.Unlock()
					}); err == nil {
						perStep = append(perStep, s)
					}
				}
				continue
			}
			_, err = ev.Subscribe(t.Context(), Request{Expr: p, Backfill: 8 * step}, func(u Update) {
				s.mu.Lock()
				s.us = append(s.us, u)
				s.mu.Unlock()
			})
			if err != nil {
				t.Errorf("subscribe %q: %v", p, err)
				continue
			}
			subs = append(subs, s)
		}
		carried := 0
		ev.mu.Lock()
		for _, g := range ev.mu.groups {
			if g.carry != nil {
				carried++
			}
		}
		ev.mu.Unlock()
		time.Sleep(time.Duration(6*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		engine := query.NewEngine(store, eval.Options{})
		compared := 0
		for _, s := range subs {
			s.mu.Lock()
			us := slices.Clone(s.us)
			s.mu.Unlock()
			if len(us) != 7 {
				t.Errorf("%s: %d updates, want the backfill and 6 steps", s.q, len(us))
				continue
			}
			start, end := us[0].End-8*step, us[len(us)-1].End
			got := map[string][]float64{}
			for _, u := range us {
				if u.Err != nil {
					t.Errorf("%s: %v", s.q, u.Err)
					break
				}
				for _, l := range u.Lines {
					k := lineKey(l.Label, tags.FromMap(l.Tags))
					vs := got[k]
					for int64(len(vs)) < (l.Start-start)/step {
						vs = append(vs, math.NaN())
					}
					got[k] = append(vs, l.Values...)
				}
			}
			styles, _ := query.Parse(s.q, query.ParseOptions{})
			res, err := engine.Eval(context.Background(), styles, eval.Range{Start: start, End: end, Step: step})
			if err != nil {
				t.Errorf("graph %s: %v", s.q, err)
				continue
			}
			want := map[string][]float64{}
			for _, l := range res.Lines {
				want[lineKey(l.Label, l.Tags)] = l.Values
			}
			if len(want) != len(res.Lines) {
				continue // lines the key cannot tell apart
			}
			if len(got) != len(want) {
				t.Errorf("%s: %d lines, graph %d", s.q, len(got), len(want))
				continue
			}
			for k, w := range want {
				g := got[k]
				for len(g) < len(w) {
					g = append(g, math.NaN())
				}
				for i := range w {
					if g[i] != w[i] && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
						t.Errorf("%s line %s at step %d: live %v, graph %v", s.q, k, i, g[i], w[i])
						break
					}
				}
			}
			compared++
		}
		// Range summaries: every step equals the graph of that step.
		stepCompared := 0
		for _, s := range perStep {
			s.mu.Lock()
			us := slices.Clone(s.us)
			s.mu.Unlock()
			styles, _ := query.Parse(s.q, query.ParseOptions{})
			for _, u := range us {
				res, err := engine.Eval(context.Background(), styles, eval.Range{Start: u.End - step, End: u.End, Step: step})
				if (err != nil) != (u.Err != nil) {
					t.Errorf("%s: live error %v, graph error %v", s.q, u.Err, err)
				}
				if err != nil || u.Err != nil {
					break
				}
				want := map[string]float64{}
				for _, l := range res.Lines {
					want[lineKey(l.Label, l.Tags)] = l.Values[0]
				}
				if len(want) != len(u.Lines) {
					t.Errorf("%s at %d: %d lines, graph %d", s.q, u.End, len(u.Lines), len(want))
					continue
				}
				for _, l := range u.Lines {
					w, ok := want[lineKey(l.Label, tags.FromMap(l.Tags))]
					if v := l.Values[0]; !ok || (v != w && !(math.IsNaN(v) && math.IsNaN(w))) {
						t.Errorf("%s at %d line %s: live %v, graph %v (%v)", s.q, u.End, l.Label, v, w, ok)
					}
				}
			}
			if len(us) == 6 {
				stepCompared++
			}
		}
		if stepCompared < 30 {
			t.Errorf("only %d range-summarizing expressions compared step by step", stepCompared)
		}
		t.Logf("%d expressions compared (%d carrying their state), %d summarize their range (%d compared step by step)", compared, carried, skipped, stepCompared)
		if carried < 30 {
			t.Errorf("only %d expressions carry their state", carried)
		}
		if compared < 200 {
			t.Errorf("only %d expressions compared", compared)
		}
	})
}

func lineKey(label string, ts tags.Set) string { return label + "|" + ts.String() }
