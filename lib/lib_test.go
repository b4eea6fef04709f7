package lib

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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
}

func TestRegistrySameMeter(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{MaxMeters: 3})
	a := r.Counter("c", "k", "v")
	if b := r.Counter("c", "k", "v"); a != b {
		t.Error("same id gave two counters")
	}
	if g := r.Gauge("c", "k", "v"); g == nil {
		t.Error("nil gauge for an id taken by a counter")
	}
	r.Timer("t")
	r.Gauge("g")
	over := r.Counter("over")
	over.Increment()
	n := 0
	r.Meters(func(any) { n++ })
	if n != 3 {
		t.Errorf("%d meters registered, want the limit 3", n)
	}
	var nilReg *Registry
	nilReg.Counter("x").Increment() // works, unregistered
}

func TestMeasure(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{})
	c := r.Counter("c")
	tm := r.Timer("t")
	d := r.DistributionSummary("d")
	mg := r.MaxGauge("m")
	r.Gauge("g").Set(7)
	for range 60 {
		c.Increment()
	}
	tm.Record(2 * time.Second)
	tm.Record(4 * time.Second)
	d.Record(3)
	mg.Set(5)
	mg.Set(2)
	got := map[string]float64{}
	for _, m := range r.Measure(time.Minute) {
		got[m.Id.String()] = m.Value
	}
	want := map[string]float64{
		"c{statistic=count}":          1,
		"g{statistic=gauge}":          7,
		"m{statistic=max}":            5,
		"t{statistic=count}":          2.0 / 60,
		"t{statistic=totalTime}":      6.0 / 60,
		"t{statistic=totalOfSquares}": 20.0 / 60,
		"t{statistic=max}":            4,
		"d{statistic=count}":          1.0 / 60,
		"d{statistic=totalAmount}":    3.0 / 60,
		"d{statistic=totalOfSquares}": 9.0 / 60,
		"d{statistic=max}":            3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Measure mismatch (-want +got):\n%s", diff)
	}
	// The next step starts from zero.
	got = map[string]float64{}
	for _, m := range r.Measure(time.Minute) {
		got[m.Id.String()] = m.Value
	}
	if got["c{statistic=count}"] != 0 || got["t{statistic=count}"] != 0 {
		t.Errorf("second step = %v", got)
	}
	if _, ok := got["m{statistic=max}"]; ok {
		t.Error("max gauge reported with nothing set in the step")
	}
}

func TestWritePrometheus(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{})
	r.Counter("sextant.ingest.datapoints", "protocol", "atlas").Add(3)
	r.Timer("sextant.query.latency").Record(time.Second)
	r.Gauge("sextant.series").Set(42)
	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE sextant_ingest_datapoints_total counter\n",
		`sextant_ingest_datapoints_total{protocol="atlas"} 3`,
		"sextant_query_latency_seconds_count 1\n",
		"sextant_query_latency_seconds_sum 1\n",
		"sextant_series 42\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	r := NewRegistry(RegistryOptions{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				r.Counter("c").Increment()
				r.Timer("t").Record(time.Duration(i))
				r.DistributionSummary("d").Record(float64(i))
				r.MaxGauge("m").Set(float64(i))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			r.Measure(time.Second)
		}
	})
	wg.Wait()
	if c := r.Counter("c").Count(); c != 8000 {
		t.Errorf("counter = %v, want 8000", c)
	}
}
