package lib

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

// TestMain checks that no test left a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIdNormalizes(t *testing.T) {
	t.Parallel()
	id := NewId("requests", "status", "200", "method", "GET", "status", "500")
	if got := id.String(); got != "requests{method=GET,status=500}" {
		t.Errorf("String() = %q", got)
	}
	if got := id.WithTag("a", "1").String(); got != "requests{a=1,method=GET,status=500}" {
		t.Errorf("WithTag = %q", got)
	}
	if id.String() != "requests{method=GET,status=500}" {
		t.Error("WithTag modified the original id")
	}
	if !NewId("x", "a", "1", "b", "2").equal(NewId("x", "b", "2", "a", "1")) {
		t.Error("tag order changed the id")
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func measure(r *Registry, step time.Duration) map[string]float64 {
	got := map[string]float64{}
	for _, m := range r.Measure(step) {
		k := m.Id.String()
		if m.Gauge {
			k += "/gauge"
		}
		got[k] = m.Value
	}
	return got
}

func TestRegistrySameMeter(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{MaxMeters: 3})
	a := r.Counter("c", "k", "v", "j", "w")
	if b := r.Counter("c", "j", "w", "k", "v"); a != b {
		t.Error("same id in another tag order gave two counters")
	}
	if b := r.CounterFor(NewId("c", "k", "v", "j", "w")); a != b {
		t.Error("CounterFor gave another counter")
	}
	if b := r.Counter("c", "k", "v", "j", "x", "j", "w"); a != b {
		t.Error("a duplicate key (later wins) gave another counter")
	}
	if c := r.Counter("c", "k", "v", "k", "v"); c == a {
		t.Error("k=v twice matched k=v,j=w")
	}
	if g := r.Gauge("c", "k", "v", "j", "w"); g == nil {
		t.Error("nil gauge for an id taken by a counter")
	}
	r.Timer("t")
	over := r.Counter("over")
	over.Increment()
	if n := r.Len(); n != 3 {
		t.Errorf("%d meters registered, want the limit 3", n)
	}
	var nilReg *Registry
	nilReg.Counter("x").Increment() // works, unregistered
	nilReg.PercentileTimer("x").Record(time.Second)
}

func TestMeasure(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{})
	c := r.Counter("c")
	tm := r.Timer("t")
	d := r.DistributionSummary("d")
	mg := r.MaxGauge("m")
	r.Gauge("g").Set(7)
	r.FuncGauge(func() float64 { return 3 }, "fg")
	r.FuncGauge(func() float64 { panic("broken gauge") }, "bad")
	for range 60 {
		c.Increment()
	}
	c.Add(0.5)
	c.Add(-3)
	c.Add(math.NaN())
	tm.Record(2 * time.Second)
	tm.Record(4 * time.Second)
	tm.Record(-time.Second)
	d.Record(3)
	mg.Set(5)
	mg.Set(2)
	want := map[string]float64{
		"c{statistic=count}":                 60.5 / 60,
		"g{statistic=gauge}/gauge":           7,
		"fg{statistic=gauge}/gauge":          3,
		"m{statistic=max}/gauge":             5,
		"t{statistic=count}":                 2.0 / 60,
		"t{statistic=totalTime}":             6.0 / 60,
		"t{statistic=totalOfSquares}":        20.0 / 60,
		"t{statistic=max}/gauge":             4,
		"d{statistic=count}":                 1.0 / 60,
		"d{statistic=totalAmount}":           3.0 / 60,
		"d{statistic=totalOfSquares}":        9.0 / 60,
		"d{statistic=max}/gauge":             3,
		"spectator.registrySize/gauge":       0, // not a meter: ignored below
		"c{statistic=count}/this-is-a-guard": 0,
	}
	delete(want, "spectator.registrySize/gauge")
	delete(want, "c{statistic=count}/this-is-a-guard")
	got := measure(r, time.Minute)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); diff != "" {
		t.Errorf("Measure mismatch (-want +got):\n%s", diff)
	}
	// The next step starts from zero.
	got = measure(r, time.Minute)
	if got["c{statistic=count}"] != 0 || got["t{statistic=count}"] != 0 {
		t.Errorf("second step = %v", got)
	}
	if _, ok := got["m{statistic=max}/gauge"]; ok {
		t.Error("max gauge reported with nothing set in the step")
	}
	if _, ok := got["t{statistic=max}/gauge"]; ok {
		t.Error("timer max reported with nothing recorded in the step")
	}
}

func TestPercentileTimer(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{})
	pt := r.PercentileTimer("lat", "app", "www")
	for i := 1; i <= 100; i++ {
		pt.Record(time.Duration(i) * time.Millisecond)
	}
	pt.Record(5 * time.Minute)  // beyond the range: the last bucket
	pt.Record(time.Microsecond) // below it: the first
	got := measure(r, time.Second)
	total := 0.0
	for k, v := range got {
		if strings.Contains(k, "statistic=percentile") {
			if !strings.HasPrefix(k, "lat{app=www,percentile=T") {
				t.Errorf("bucket id %s", k)
			}
			total += v
		}
	}
	if total != 102 || got["lat{app=www,statistic=count}"] != 102 {
		t.Errorf("bucket counts sum to %v, count %v", total, got["lat{app=www,statistic=count}"])
	}
	loIdx := PercentileBucketIndex(int64(10 * time.Millisecond))
	wantLo := 1.0 // the microsecond, below the range
	for i := 1; i <= 100; i++ {
		if PercentileBucketIndex(int64(time.Duration(i)*time.Millisecond)) <= loIdx {
			wantLo++
		}
	}
	lo := PercentileTag('T', loIdx)
	hi := PercentileTag('T', PercentileBucketIndex(int64(time.Minute)))
	if got["lat{app=www,percentile="+lo+",statistic=percentile}"] != wantLo || got["lat{app=www,percentile="+hi+",statistic=percentile}"] != 1 {
		t.Errorf("range clamping: want %v in %s and 1 in %s: %v", wantLo, lo, hi, got)
	}
	ds := r.PercentileDistributionSummaryFor(NewId("size"), 100, 10_000)
	ds.Record(50)
	ds.Record(20_000)
	ds.Record(1000)
	got = measure(r, time.Second)
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "size{percentile=D") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d summary buckets: %v", n, got)
	}
}

func TestLongTaskTimer(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	r := NewRegistry(RegistryOptions{Clock: c.now})
	ltt := r.LongTaskTimer("job")
	a := ltt.Start()
	c.add(30 * time.Second)
	b := ltt.Start()
	c.add(10 * time.Second)
	got := measure(r, time.Minute)
	if got["job{statistic=activeTasks}/gauge"] != 2 || got["job{statistic=duration}/gauge"] != 50 {
		t.Errorf("two tasks: %v", got)
	}
	if d := a.Stop(); d != 40*time.Second {
		t.Errorf("Stop = %v", d)
	}
	if a.Stop() != 0 {
		t.Errorf("second Stop counted")
	}
	b.Stop()
	got = measure(r, time.Minute)
	if got["job{statistic=activeTasks}/gauge"] != 0 || got["job{statistic=duration}/gauge"] != 0 {
		t.Errorf("no tasks: %v", got)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	r := NewRegistry(RegistryOptions{Clock: c.now})
	busy, idle := r.Counter("busy"), r.Counter("idle")
	g := r.Gauge("g")
	g.Set(1)
	idle.Increment()
	r.FuncGauge(func() float64 { return 1 }, "polled")
	for range 16 {
		busy.Increment()
		c.add(time.Minute)
		r.Measure(time.Minute)
	}
	if n := r.Len(); n != 2 {
		t.Errorf("%d meters after 16 idle minutes, want busy and polled", n)
	}
	if got := measure(r, time.Minute); len(got) != 2 {
		t.Errorf("published %v", got)
	}
	// An expired meter that is used again comes back.
	idle.Increment()
	if r.Counter("idle") != idle || r.Len() != 3 {
		t.Errorf("revived counter not registered")
	}
	if got := measure(r, time.Minute); got["idle{statistic=count}"] != 1.0/60 {
		t.Errorf("revived counter published %v", got)
	}
}

func TestWritePrometheus(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{})
	r.Counter("sextant.ingest.datapoints", "protocol", "atlas").Add(3)
	r.Timer("sextant.query.latency").Record(time.Second)
	r.PercentileTimer("ipc.server.call").Record(time.Second)
	r.Gauge("sextant.series").Set(42)
	r.LongTaskTimer("compaction").Start()
	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE sextant_ingest_datapoints_total counter\n",
		`sextant_ingest_datapoints_total{protocol="atlas"} 3`,
		"sextant_query_latency_seconds_count 1\n",
		"sextant_query_latency_seconds_sum 1\n",
		"ipc_server_call_seconds_count 1\n",
		"sextant_series 42\n",
		"compaction_active_tasks 1\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestConcurrentUpdates updates every meter type from many goroutines
// while steps are measured: run under -race, and the totals must add up.
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{})
	const workers, n = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range n {
				r.Counter("c", "k", "v").Increment()
				r.Timer("t").Record(time.Duration(i))
				r.PercentileTimer("pt").Record(time.Duration(i) * time.Microsecond)
				r.DistributionSummary("d").Record(float64(i))
				r.MaxGauge("m").Set(float64(i))
				r.Gauge("g", "w", string(rune('a'+w))).Set(float64(i))
				task := r.LongTaskTimer("l").Start()
				task.Stop()
			}
		})
	}
	var counted float64
	wg.Go(func() {
		for range 50 {
			for _, m := range r.Measure(time.Second) {
				if m.Id.String() == "c{k=v,statistic=count}" {
					counted += m.Value
				}
			}
		}
	})
	wg.Wait()
	for _, m := range r.Measure(time.Second) {
		if m.Id.String() == "c{k=v,statistic=count}" {
			counted += m.Value
		}
	}
	if c := r.Counter("c", "k", "v").Count(); c != workers*n || counted != workers*n {
		t.Errorf("counter = %v, measured %v, want %d", c, counted, workers*n)
	}
	if c := r.Timer("t").Count(); c != workers*n {
		t.Errorf("timer count = %d", c)
	}
}

func TestLookupAllocs(t *testing.T) {
	r := NewRegistry(RegistryOptions{})
	r.Counter("requests", "status", "200", "method", "GET")
	r.Timer("latency", "method", "GET")
	n := testing.AllocsPerRun(1000, func() {
		r.Counter("requests", "method", "GET", "status", "200").Increment()
		r.Timer("latency", "method", "GET").Record(time.Millisecond)
	})
	if n != 0 {
		t.Errorf("warm lookups allocate %v times", n)
	}
}
