package ingest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// otlpMixed is an export request at time t (ms) with every kind of metric
// and attribute the mapping treats apart: promoted and other resource
// attributes, scope attributes, datapoint attributes of every value type
// (an int and a string of the same text among them), a repeated key, an
// empty value, a value longer than the policy keeps; gauges, cumulative
// and delta sums, explicit and exponential histograms, a summary.
func otlpMixed(t int64, k int) pmetricotlp.ExportRequest {
	md := pmetric.NewMetrics()
	start := pcommon.Timestamp((now - hour) * 1e6)
	at := pcommon.Timestamp(t * 1e6)
	for r := range 2 {
		rm := md.ResourceMetrics().AppendEmpty()
		ra := rm.Resource().Attributes()
		ra.PutStr("service.name", fmt.Sprint("svc", r))
		ra.PutStr("host.name", "h1")
		ra.PutInt("process.pid", int64(1000+k)) // not promoted: target_info
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("lib")
		sm.Scope().Attributes().PutStr("scope.kind", "x")
		ms := sm.Metrics()

		g := ms.AppendEmpty()
		g.SetName("temperature")
		gauge := g.SetEmptyGauge()
		for i := range 3 {
			dp := gauge.DataPoints().AppendEmpty()
			dp.SetTimestamp(at)
			dp.SetDoubleValue(float64(20 + i + k))
			dp.Attributes().PutStr("room", fmt.Sprint("r", i))
			dp.Attributes().PutInt("floor", int64(i))
			dp.Attributes().PutBool("open", i%2 == 0)
			dp.Attributes().PutDouble("ratio", 0.5*float64(i))
			dp.Attributes().PutStr("empty", "")
			dp.Attributes().PutStr("host.name", "override") // repeats a resource key
		}
		// An int 1 and a string "1": one series, two keys.
		for _, asInt := range []bool{true, false} {
			m := ms.AppendEmpty()
			m.SetName("doors")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(at)
			dp.SetIntValue(int64(k))
			if asInt {
				dp.Attributes().PutInt("n", 1)
			} else {
				dp.Attributes().PutStr("n", "1")
			}
		}
		long := ms.AppendEmpty()
		long.SetName("long")
		ldp := long.SetEmptyGauge().DataPoints().AppendEmpty()
		ldp.SetTimestamp(at)
		ldp.SetDoubleValue(1)
		ldp.Attributes().PutStr("v", strings.Repeat("x", 40)) // cut: never cached
		slice := ldp.Attributes().PutEmptySlice("list")
		slice.AppendEmpty().SetStr("a")

		cum := ms.AppendEmpty()
		cum.SetName("requests")
		cs := cum.SetEmptySum()
		cs.SetIsMonotonic(true)
		cs.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		cdp := cs.DataPoints().AppendEmpty()
		cdp.SetStartTimestamp(start)
		cdp.SetTimestamp(at)
		cdp.SetIntValue(int64(100 * (k + 1)))
		cdp.Attributes().PutStr("code", "200")

		del := ms.AppendEmpty()
		del.SetName("bytes")
		ds := del.SetEmptySum()
		ds.SetIsMonotonic(true)
		ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		ddp := ds.DataPoints().AppendEmpty()
		ddp.SetStartTimestamp(pcommon.Timestamp((t - 90_000) * 1e6))
		ddp.SetTimestamp(at)
		ddp.SetDoubleValue(600)

		for _, temp := range []pmetric.AggregationTemporality{pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta} {
			h := ms.AppendEmpty()
			h.SetName("latency." + temp.String())
			h.SetUnit("ms")
			hist := h.SetEmptyHistogram()
			hist.SetAggregationTemporality(temp)
			dp := hist.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
			if temp == pmetric.AggregationTemporalityDelta {
				dp.SetStartTimestamp(pcommon.Timestamp((t - 2*minute) * 1e6))
			}
			dp.SetTimestamp(at)
			dp.ExplicitBounds().FromRaw([]float64{5, 50, 500})
			dp.BucketCounts().FromRaw([]uint64{uint64(k + 1), 4, 2, 1})
			dp.SetCount(uint64(k + 8))
			dp.SetSum(100)
			dp.SetMin(1)
			dp.SetMax(700)
		}
		eh := ms.AppendEmpty()
		eh.SetName("size")
		ehist := eh.SetEmptyExponentialHistogram()
		ehist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		edp := ehist.DataPoints().AppendEmpty()
		edp.SetTimestamp(at)
		edp.SetScale(1)
		edp.Positive().SetOffset(2)
		edp.Positive().BucketCounts().FromRaw([]uint64{3, 1, 4})
		edp.SetCount(8)
		edp.SetSum(40)

		// Another scope, whose attributes alone tell its series apart.
		sm2 := rm.ScopeMetrics().AppendEmpty()
		sm2.Scope().Attributes().PutStr("scope.kind", "y")
		g2 := sm2.Metrics().AppendEmpty()
		g2.SetName("temperature")
		g2dp := g2.SetEmptyGauge().DataPoints().AppendEmpty()
		g2dp.SetTimestamp(at)
		g2dp.SetDoubleValue(float64(40 + k))
		gauge.DataPoints().At(0).Attributes().CopyTo(g2dp.Attributes())

		su := ms.AppendEmpty()
		su.SetName("rtt")
		sdp := su.SetEmptySummary().DataPoints().AppendEmpty()
		sdp.SetTimestamp(at)
		sdp.SetCount(uint64(10 * (k + 1)))
		sdp.SetSum(float64(55 * (k + 1)))
		q := sdp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.99)
		q.SetValue(9)
	}
	return pmetricotlp.NewExportRequestFromMetrics(md)
}

// exportOTLP runs one export of body (protobuf) and describes its answer.
func exportOTLP(h *Handler, body []byte) string {
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		return "undecodable"
	}
	if req.Metrics().DataPointCount() > 1000 {
		return "too large" // refused before mapping
	}
	resp, err := h.exportMetrics(context.Background(), req)
	ps := resp.PartialSuccess()
	return fmt.Sprintf("%d %q %v", ps.RejectedDataPoints(), ps.ErrorMessage(), err)
}

// ingestCounters returns the handler's own counters but the ref cache's,
// in the Prometheus text format, sorted.
func ingestCounters(t testing.TB, reg *lib.Registry) []string {
	var b bytes.Buffer
	if err := reg.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "sextant_ingest") && !strings.Contains(l, "refcache") {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// FuzzOTLPRefCache: OTLP metrics through the ref cache store the same
// datapoints, answer the same and count the same as without it, request
// after request (the cache fills, hits, and then meets a store that
// forgot every series), under the default tag policy and under one small
// enough to cut values and numbers.
func FuzzOTLPRefCache(f *testing.F) {
	for k := range 2 {
		b, err := otlpMixed(now+int64(k)*minute, k).MarshalProto()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	small, _ := otlpRequest(func(ms pmetric.MetricSlice) {
		g := ms.AppendEmpty()
		g.SetName("m")
		dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(now))
		dp.SetDoubleValue(1)
		dp.Attributes().PutInt("i", 123456789)
		dp.Attributes().PutDouble("d", 1.25)
	}).MarshalProto()
	f.Add(small)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, policy := range []TagPolicy{{}, {MaxValueBytes: 5, MaxTags: 9}} {
			plain, cached := newMemAppender(), newMemAppender()
			regP, regC := lib.NewRegistry(lib.RegistryOptions{}), lib.NewRegistry(lib.RegistryOptions{})
			clock := func() int64 { return now }
			hp, err := New(Options{Appender: plain, MaxRefs: -1, Tags: policy, Now: clock, Registry: regP})
			if err != nil {
				t.Fatal(err)
			}
			hc, err := New(Options{Appender: cached, Tags: policy, Now: clock, Registry: regC})
			if err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				if round == 2 {
					plain.forget()
					cached.forget()
				}
				if want, got := exportOTLP(hp, body), exportOTLP(hc, body); want != got {
					t.Fatalf("policy %+v round %d: without the cache %s, with it %s", policy, round, want, got)
				}
			}
			// A retried datapoint is stored after the rest of its request.
			slices.Sort(plain.stored)
			slices.Sort(cached.stored)
			if diff := cmp.Diff(plain.stored, cached.stored); diff != "" {
				t.Fatalf("policy %+v: stored (-without +with the cache):\n%s", policy, diff)
			}
			if diff := cmp.Diff(ingestCounters(t, regP), ingestCounters(t, regC)); diff != "" {
				t.Fatalf("policy %+v: counters (-without +with the cache):\n%s", policy, diff)
			}
		}
	})
}

// TestOTLPRefCacheStore: the mixed workload into two real stores, with
// and without the cache, step after step, then past a retention that
// deletes every series: the same answers, the same stored series and
// values, and the cache hits (every series of a known datapoint, a
// histogram's a dozen) and recovers from the stale refs.
func TestOTLPRefCacheStore(t *testing.T) {
	t.Parallel()
	type side struct {
		store *db.DB
		h     *Handler
		reg   *lib.Registry
	}
	var clock atomic.Int64
	clock.Store(now)
	open := func(maxRefs int) side {
		store, err := db.Open("", db.Options{Now: clock.Load, MaintenanceInterval: 1 << 40, MemoryRetention: 2 * hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		reg := lib.NewRegistry(lib.RegistryOptions{})
		h, err := New(Options{Appender: store, MaxRefs: maxRefs, Tags: TagPolicy{MaxValueBytes: 32}, Now: clock.Load, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		return side{store, h, reg}
	}
	plain, cached := open(-1), open(0)
	send := func(t0 int64, steps int) {
		t.Helper()
		for k := range steps {
			ts := t0 + int64(k)*minute
			clock.Store(ts + 10_000)
			body, err := otlpMixed(ts, k).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			want, got := exportOTLP(plain.h, body), exportOTLP(cached.h, body)
			if want != got {
				t.Fatalf("step %d: without the cache %s, with it %s", k, want, got)
			}
		}
	}
	compare := func(when string, start, end int64) {
		t.Helper()
		var sets [2][]tsdb.Series
		for i, s := range []side{plain, cached} {
			set, err := s.store.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.True(), Start: start, End: end, Step: minute})
			if err != nil {
				t.Fatal(err)
			}
			sets[i] = set.Series
			slices.SortFunc(sets[i], func(a, b tsdb.Series) int { return strings.Compare(a.Tags.String(), b.Tags.String()) })
		}
		if len(sets[0]) < 20 {
			t.Fatalf("%s: %d series stored, want more", when, len(sets[0]))
		}
		if diff := cmp.Diff(sets[0], sets[1], cmpopts.EquateNaNs()); diff != "" {
			t.Errorf("%s: stored (-without +with the cache):\n%s", when, diff)
		}
		if diff := cmp.Diff(ingestCounters(t, plain.reg), ingestCounters(t, cached.reg)); diff != "" {
			t.Errorf("%s: counters (-without +with the cache):\n%s", when, diff)
		}
	}
	send(now, 6)
	compare("after 6 steps", now-hour, now+10*minute)
	hits := cached.reg.Counter("sextant.ingest.refcache", "result", "hit").Count()
	if hits < 5*40 {
		t.Errorf("%v ref cache hits in 6 steps, want at least 200", hits)
	}
	later := now + 6*hour
	clock.Store(later)
	for _, s := range []side{plain, cached} {
		if err := s.store.Maintain(); err != nil {
			t.Fatal(err)
		}
	}
	send(later, 3)
	compare("after the retention", later-hour, later+10*minute)
	if stale := cached.reg.Counter("sextant.ingest.refcache", "result", "stale").Count(); stale == 0 {
		t.Error("no stale refs after the retention deleted every series")
	}
}
