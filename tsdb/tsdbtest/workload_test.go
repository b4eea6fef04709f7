package tsdbtest

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestWorkloadShape(t *testing.T) {
	t.Parallel()
	w := NewWorkload(WorkloadOptions{Series: 5000, Samples: 60, Start: 1_700_006_400_000, Sparse: 10})
	if len(w.Series) != 5000 || w.Samples() != 60 || w.Interval != 60_000 {
		t.Fatalf("shape %d × %d at %d ms", len(w.Series), w.Samples(), w.Interval)
	}
	if got, want := w.End(), int64(1_700_006_400_000+60*60_000); got != want {
		t.Errorf("End() = %d, want %d", got, want)
	}
	distinct := map[string]map[string]bool{}
	seen := map[string]bool{}
	kinds := map[Kind]int{}
	sparse, absent := 0, 0
	for i, s := range w.Series {
		if seen[s.String()] {
			t.Fatalf("series %d %v is a duplicate", i, s)
		}
		seen[s.String()] = true
		for _, tag := range s {
			if distinct[tag.Key] == nil {
				distinct[tag.Key] = map[string]bool{}
			}
			distinct[tag.Key][tag.Value] = true
		}
		kinds[w.Kinds[i]]++
		dst, _ := s.Get(tsdb.DSTypeKey)
		if (w.Kinds[i] == Counter) != (dst == "counter") {
			t.Errorf("series %v: kind %v with %s=%s", s, w.Kinds[i], tsdb.DSTypeKey, dst)
		}
		vals := w.Values[i]
		nan := 0
		prev := math.NaN()
		for _, v := range vals {
			if math.IsNaN(v) {
				nan++
				continue
			}
			switch w.Kinds[i] {
			case Counter:
				if v != math.Floor(v) || v < prev {
					t.Fatalf("counter %v: %v after %v", s, v, prev)
				}
			case Constant:
				if !math.IsNaN(prev) && v != prev {
					t.Fatalf("constant %v: %v after %v", s, v, prev)
				}
			case Gauge:
				if v < 0 {
					t.Fatalf("gauge %v: %v < 0", s, v)
				}
			}
			prev = v
		}
		if nan > 0 {
			sparse++
			absent += nan
		}
	}
	for key, want := range map[string]int{"name": 50, "app": 100, "node": 100, "region": 1, "status": 5, tsdb.DSTypeKey: 2} {
		if got := len(distinct[key]); got != want {
			t.Errorf("%d distinct %s, want %d", got, key, want)
		}
	}
	if kinds[Counter] != 2000 || kinds[Gauge] != 2000 || kinds[Constant] != 1000 {
		t.Errorf("kinds %v, want 2/5 counters, 2/5 gauges, 1/5 constants", kinds)
	}
	// One series in ten is sparse; nearly all of them miss samples, and
	// each misses most of them.
	if sparse < 400 || sparse > 500 {
		t.Errorf("%d sparse series, want about 500", sparse)
	}
	if frac := float64(absent) / float64(500*60); frac < 0.5 {
		t.Errorf("sparse series miss %.2f of their samples, want most", frac)
	}
	// A random walk moves.
	if g := w.Values[2]; g[0] == g[59] {
		t.Errorf("gauge %v did not move: %v", w.Series[2], g)
	}
	var api int
	for app := range distinct["app"] {
		if strings.HasPrefix(app, "api") {
			api++
		}
	}
	if api != 10 {
		t.Errorf("%d apps start with api, want a tenth (10)", api)
	}
}

// TestWorkloadDeterministic requires that a series' values depend only on
// the seed and its index: a bigger workload starts with the same series.
func TestWorkloadDeterministic(t *testing.T) {
	t.Parallel()
	a := NewWorkload(WorkloadOptions{Series: 300, Samples: 20, Start: 0})
	b := NewWorkload(WorkloadOptions{Series: 600, Samples: 20, Start: 0})
	if diff := cmp.Diff(a.Series, b.Series[:300]); diff != "" {
		t.Errorf("series differ (-300 +600):\n%s", diff)
	}
	if diff := cmp.Diff(a.Values, b.Values[:300]); diff != "" {
		t.Errorf("values differ (-300 +600):\n%s", diff)
	}
	c := NewWorkload(WorkloadOptions{Series: 300, Samples: 20, Start: 0, Seed: 2})
	if cmp.Equal(a.Values, c.Values) {
		t.Error("seed 2 gives the values of seed 1")
	}
}

// TestWorkloadShards has more series than names × nodes × statuses, so
// that the shard tag must keep them apart.
func TestWorkloadShards(t *testing.T) {
	t.Parallel()
	w := NewWorkload(WorkloadOptions{Series: 2 * 2 * 3 * 4, Samples: 1, Names: 2, Nodes: 2, Statuses: 3})
	seen := map[string]bool{}
	for _, s := range w.Series {
		if seen[s.String()] {
			t.Fatalf("duplicate series %v", s)
		}
		seen[s.String()] = true
	}
	if _, ok := w.Series[len(w.Series)-1].Get("shard"); !ok {
		t.Errorf("last series %v has no shard tag", w.Series[len(w.Series)-1])
	}
	if _, ok := w.Series[0].Get("shard"); ok {
		t.Errorf("first series %v has a shard tag", w.Series[0])
	}
}

func TestWorkloadBatchAndAtlas(t *testing.T) {
	t.Parallel()
	w := NewWorkload(WorkloadOptions{Series: 200, Samples: 30, Start: 1_700_006_400_000, Sparse: 4})
	for step := range 30 {
		var b tsdb.Batch
		w.Batch(&b, step, 0, 200, nil)
		var body struct {
			Tags    map[string]string `json:"tags"`
			Metrics []struct {
				Tags      map[string]string `json:"tags"`
				Timestamp int64             `json:"timestamp"`
				Value     float64           `json:"value"`
			} `json:"metrics"`
		}
		raw := w.AppendAtlas(nil, step, 0, 200)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("AppendAtlas: %v\n%s", err, raw)
		}
		if len(body.Metrics) != len(b.Points) || len(b.Points) == 200 || len(b.Points) < 150 {
			t.Fatalf("step %d: %d datapoints in the batch, %d in the body, of 200 series (50 sparse)", step, len(b.Points), len(body.Metrics))
		}
		for i, p := range b.Points {
			m := body.Metrics[i]
			var ts tags.Set
			for k, v := range m.Tags {
				ts = append(ts, tags.Tag{Key: k, Value: v})
			}
			if !ts.Normalize().Equal(p.Tags) || m.Timestamp != p.T || m.Value != p.V || p.T != w.Start+int64(step)*w.Interval {
				t.Fatalf("step %d point %d: body %v, batch %v", step, i, m, p)
			}
		}
	}
}
