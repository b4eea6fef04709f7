package ingest

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// otlpConverter maps OTLP metrics onto series (docs/otlp.md):
//
//   - scope and datapoint attributes, and the resource attributes the tag
//     policy promotes, become tags as sent (values cut to the policy's
//     length, empty values dropped); the other resource attributes go to
//     one target_info series per resource; the metric name becomes name;
//   - gauges are gauges; monotonic sums are per-second rates: a delta's
//     rate over its interval (start, time] is spread over the storage steps
//     it overlaps, each step getting rate × overlap / step as an
//     atlas.dstype=sum datapoint, so counts are conserved exactly whatever
//     the export interval and jitter; a cumulative sum is stored as a
//     counter, which the store turns into a rate, reset-aware; other sums
//     are gauges (cumulative) or per-step sums (delta);
//   - histograms and exponential histograms become statistic=count,
//     totalTime or totalAmount, max and min series, plus percentile bucket
//     series (Spectator's buckets: T, in nanoseconds, for time units, D
//     otherwise) holding the source bucket counts spread evenly over the
//     bucket ranges they overlap, so that :percentiles and :dist-avg work;
//   - summaries become count and totalAmount plus a gauge per quantile
//     (tag quantile).
//
// Exemplars cannot be stored yet and are counted as dropped.
type otlpConverter struct {
	policy  TagPolicy
	cut     int // values cut to the policy's length
	now     int64
	step    int64 // the store's step, ms
	points  []tsdb.Datapoint
	spans   []tagSpan // points[i].Tags is arena[spans[i]]
	arena   []tags.Tag
	base    []tags.Tag // resource + scope tags of the metric at hand
	rej     rejections
	reasons map[string]int
	dropped int // exemplars
	// zero marks the points that are a cumulative series' zero at its
	// start time (see counter): the store rejects them as out of order
	// when it has seen the series since, which is no error.
	zero     []bool
	quiet    bool // the point being added is such a zero: failures are not counted
	clampLo  float64
	clampHi  float64 // the datapoint's [min, max] in bucket units, for spread
	buckets  [lib.NumPercentileBuckets]float64
	bucketOK [lib.NumPercentileBuckets]bool
	// ref is the ref cache's state (otlpref.go).
	ref otlpRefs
	// pct holds the percentile tag values made so far, T's then D's: a
	// histogram has a hundred bucket series, and the converter is pooled.
	pct [2 * lib.NumPercentileBuckets]string
}

// percentileTag is lib.PercentileTag, made once per converter.
func (c *otlpConverter) percentileTag(prefix byte, j int) string {
	i := j
	if prefix != 'T' {
		i += lib.NumPercentileBuckets
	}
	if c.pct[i] == "" {
		c.pct[i] = lib.PercentileTag(prefix, j)
	}
	return c.pct[i]
}

type tagSpan struct{ start, end int32 }

// reset readies c for a request; refs is the ref cache, nil for none.
func (c *otlpConverter) reset(policy TagPolicy, now, step int64, refs *refCache) {
	c.policy, c.now, c.step, c.cut = policy, now, step, 0
	c.points, c.spans, c.arena, c.base = c.points[:0], c.spans[:0], c.arena[:0], c.base[:0]
	c.zero = c.zero[:0]
	c.rej.reset()
	if c.reasons == nil {
		c.reasons = map[string]int{}
	}
	clear(c.reasons)
	c.dropped = 0
	c.ref.reset(refs)
}

// convert maps md; afterwards c.points hold the valid datapoints.
func (c *otlpConverter) convert(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		cut := c.cut
		c.base = c.resource(c.base[:0], rm.Resource().Attributes())
		c.ref.resource(c.policy, rm.Resource().Attributes(), c.cut == cut)
		res := len(c.base)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			cut := c.cut
			c.base = c.attrs(c.base[:res], sm.Scope().Attributes())
			c.ref.scope(c.policy, sm.Scope().Attributes(), c.cut == cut)
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				c.metric(ms.At(k))
			}
		}
	}
	// Point the datapoints at their tags now that the arena stopped moving.
	for i := range c.points {
		c.points[i].Tags = c.arena[c.spans[i].start:c.spans[i].end]
	}
}

// attrs appends attributes as tags, as sent but for values cut to the
// policy's length; empty values are left out.
func (c *otlpConverter) attrs(dst []tags.Tag, m pcommon.Map) []tags.Tag {
	for k, v := range m.All() {
		dst = c.attr(dst, k, v)
	}
	return dst
}

func (c *otlpConverter) attr(dst []tags.Tag, k string, v pcommon.Value) []tags.Tag {
	s := v.AsString()
	if s == "" {
		return dst
	}
	s, cut := c.policy.value(s)
	if cut {
		c.cut++
	}
	return append(dst, tags.Tag{Key: k, Value: s})
}

// resource appends the resource attributes the policy promotes to tags,
// and writes the others, with the promoted ones, as the resource's info
// series (name target_info, a gauge of 1): a resource with many
// attributes never makes its datapoints break the tag limit. When the info
// series itself would, it keeps the first attributes in key order.
func (c *otlpConverter) resource(dst []tags.Tag, m pcommon.Map) []tags.Tag {
	rest := 0
	for k, v := range m.All() {
		if c.policy.promoted(k) {
			dst = c.attr(dst, k, v)
		} else if v.AsString() != "" {
			rest++
		}
	}
	if rest == 0 {
		return dst
	}
	start := len(c.arena)
	c.arena = append(c.arena, dst...)
	for k, v := range m.All() {
		if !c.policy.promoted(k) {
			c.arena = c.attr(c.arena, k, v)
		}
	}
	c.arena = append(c.arena, tags.Tag{Key: tags.NameKey, Value: ResourceInfoName}, tags.Tag{Key: tsdb.DSTypeKey, Value: "gauge"})
	ts := tags.Set(c.arena[start:]).Normalize()
	if len(ts) > c.policy.MaxTags {
		// Keep name and dstype, drop attributes from the end.
		kept := ts[:0]
		for _, t := range ts {
			if len(kept) < c.policy.MaxTags-2 || t.Key == tags.NameKey || t.Key == tsdb.DSTypeKey {
				kept = append(kept, t)
			}
		}
		ts = kept
	}
	c.arena = c.arena[:start+len(ts)]
	if reason, _ := c.policy.check(ts); reason != "" {
		c.arena = c.arena[:start]
		return dst
	}
	c.spans = append(c.spans, tagSpan{int32(start), int32(len(c.arena))})
	c.points = append(c.points, tsdb.Datapoint{T: c.now, V: 1})
	c.zero = append(c.zero, false)
	c.ref.add(refKey{}, 0) // one a resource: not worth a key
	return dst
}

// timeScale returns the factor to seconds of a time unit, or 0.
func timeScale(unit string) float64 {
	switch unit {
	case "s":
		return 1
	case "ms":
		return 1e-3
	case "us", "µs":
		return 1e-6
	case "ns":
		return 1e-9
	case "min":
		return 60
	case "h":
		return 3600
	}
	return 0
}

func (c *otlpConverter) metric(m pmetric.Metric) {
	name := m.Name()
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			c.number(name, "gauge", dp, numberValue(dp), nil)
		}
	case pmetric.MetricTypeSum:
		s := m.Sum()
		delta := s.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := s.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			v := numberValue(dp)
			switch {
			case s.IsMonotonic() && delta:
				c.dropped += dp.Exemplars().Len()
				if dp.Flags().NoRecordedValue() || c.invalid(name, checkMonotonicDelta(v)) {
					continue
				}
				c.deltaRate(name, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), v)
			case s.IsMonotonic():
				c.dropped += dp.Exemplars().Len()
				if dp.Flags().NoRecordedValue() {
					continue
				}
				c.counter(name, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), v)
			case delta:
				c.number(name, "sum", dp, v, nil)
			default:
				c.number(name, "gauge", dp, v, nil)
			}
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		delta := h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			c.dropped += dp.Exemplars().Len()
			if dp.Flags().NoRecordedValue() || c.invalid(name, checkHistogram(dp)) {
				continue
			}
			c.clearBuckets()
			u := c.unit(m.Unit())
			c.setClamp(u, dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
			bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
			lo := math.Inf(-1)
			for b := 0; b < counts.Len(); b++ {
				n := float64(counts.At(b))
				hi := math.Inf(1)
				if b < bounds.Len() {
					hi = bounds.At(b)
				}
				c.spread(u, lo, hi, n)
				lo = hi
			}
			if !dp.HasMin() || !dp.HasMax() {
				c.keepInRange(u) // else :percentiles clamps to [min, max]
			}
			c.distribution(name, m.Unit(), delta, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(),
				float64(dp.Count()), dp.Sum(), minMax{dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max()})
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		delta := h.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			c.dropped += dp.Exemplars().Len()
			if dp.Flags().NoRecordedValue() || c.invalid(name, checkExpHistogram(dp)) {
				continue
			}
			c.clearBuckets()
			u := c.unit(m.Unit())
			c.setClamp(u, dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
			// Zero and negative buckets count as zero, as in Spectator.
			c.spread(u, 0, 0, float64(dp.ZeroCount()))
			neg := dp.Negative().BucketCounts()
			for b := 0; b < neg.Len(); b++ {
				c.spread(u, 0, 0, float64(neg.At(b)))
			}
			base := math.Exp2(math.Exp2(-float64(dp.Scale())))
			pos := dp.Positive()
			for b := 0; b < pos.BucketCounts().Len(); b++ {
				idx := float64(pos.Offset()) + float64(b)
				c.spread(u, math.Pow(base, idx), math.Pow(base, idx+1), float64(pos.BucketCounts().At(b)))
			}
			if !dp.HasMin() || !dp.HasMax() {
				c.keepInRange(u) // else :percentiles clamps to [min, max]
			}
			c.distribution(name, m.Unit(), delta, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(),
				float64(dp.Count()), dp.Sum(), minMax{dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max()})
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			t := dp.Timestamp()
			c.point(name, "counter", dp.Attributes(), t, float64(dp.Count()), "statistic", lib.StatCount)
			c.point(name, "counter", dp.Attributes(), t, dp.Sum(), "statistic", lib.StatTotalAmount)
			qs := dp.QuantileValues()
			for q := 0; q < qs.Len(); q++ {
				qv := qs.At(q)
				c.point(name, "gauge", dp.Attributes(), t, qv.Value(),
					"quantile", strconv.FormatFloat(qv.Quantile(), 'g', -1, 64))
			}
		}
	case pmetric.MetricTypeEmpty:
	default:
		c.fail(name, ReasonValue, fmt.Sprintf("unsupported metric type %v", m.Type()))
	}
}

// bucketUnit says how histogram values map onto percentile buckets.
type bucketUnit struct {
	prefix byte    // T (timers, nanoseconds) or D
	scale  float64 // multiplies a value into the bucket unit
}

func (c *otlpConverter) unit(unit string) bucketUnit {
	if s := timeScale(unit); s > 0 {
		return bucketUnit{prefix: 'T', scale: s * 1e9}
	}
	return bucketUnit{prefix: 'D', scale: 1}
}

func (c *otlpConverter) clearBuckets() {
	clear(c.buckets[:])
	clear(c.bucketOK[:])
	c.clampLo, c.clampHi = 0, math.Inf(1)
}

// setClamp sets the range the values of a histogram datapoint lie in, in
// bucket units: its min and max when it has them.
func (c *otlpConverter) setClamp(u bucketUnit, hasMin bool, minV float64, hasMax bool, maxV float64) {
	c.clampLo, c.clampHi = 0, math.Inf(1)
	if hasMin && minV*u.scale > 0 && !math.IsInf(minV, 0) {
		c.clampLo = minV * u.scale
	}
	if hasMax && maxV*u.scale >= c.clampLo && !math.IsInf(maxV, 0) {
		c.clampHi = maxV * u.scale
	}
}

// keepInRange moves the counts of the percentile buckets that reach beyond
// [min, max] one bucket inwards, so that an estimate interpolated inside a
// bucket stays within the range, for a datapoint with a min or a max but
// not both (with both, ingest writes statistic=min and statistic=max and
// :percentiles clamps its estimates exactly, so the counts stay where
// they are): the bucket holding max reaches above it
// and gives its counts to the one below; the bucket holding min reaches
// below it and gives its counts to the one above. When min and max share a
// bucket, or lie in neighbouring ones, that bucket is the best there is.
func (c *otlpConverter) keepInRange(_ bucketUnit) {
	lo, hi := 0, lib.NumPercentileBuckets-1
	if c.clampLo > 0 {
		lo = bucketOf(c.clampLo)
	}
	if !math.IsInf(c.clampHi, 1) {
		hi = bucketOf(c.clampHi)
	}
	if hi > lo+1 && float64(lib.PercentileBucketLimit(hi)) > c.clampHi {
		c.move(hi, hi-1)
		hi--
	}
	if c.clampLo > 0 && hi > lo+1 && lo > 0 && float64(lib.PercentileBucketLimit(lo-1)) < c.clampLo {
		c.move(lo, lo+1)
	}
}

func (c *otlpConverter) move(from, to int) {
	if !c.bucketOK[from] {
		return
	}
	c.buckets[to] += c.buckets[from]
	c.bucketOK[to] = true
	c.buckets[from], c.bucketOK[from] = 0, false
}

// spread adds n values, assumed evenly spread over (lo, hi], to the
// percentile buckets they fall into.
func (c *otlpConverter) spread(u bucketUnit, lo, hi, n float64) {
	if !(n > 0) {
		return
	}
	lo, hi = max(lo*u.scale, 0), hi*u.scale
	// The values lie within the datapoint's [min, max]: a bucket (lo, hi]
	// holds them only where it overlaps that range (an inconsistent bucket
	// outside it is moved to the nearest end).
	lo, hi = min(max(lo, c.clampLo), c.clampHi), max(min(hi, c.clampHi), c.clampLo)
	if math.IsInf(hi, 1) || !(hi > lo) {
		// Unbounded or degenerate: everything just above lo.
		j := bucketOf(lo)
		if math.IsInf(hi, 1) && j+1 < lib.NumPercentileBuckets {
			j++
		}
		c.buckets[j] += n
		c.bucketOK[j] = true
		return
	}
	for j := bucketOf(lo); j < lib.NumPercentileBuckets; j++ {
		bLo := 0.0
		if j > 0 {
			bLo = float64(lib.PercentileBucketLimit(j - 1))
		}
		bHi := float64(lib.PercentileBucketLimit(j))
		if overlap := min(hi, bHi) - max(lo, bLo); overlap > 0 {
			c.buckets[j] += n * overlap / (hi - lo)
			c.bucketOK[j] = true
		}
		if bHi >= hi {
			break
		}
	}
}

// bucketOf returns the first percentile bucket whose upper limit is at
// least v: where the range (v, ...] starts overlapping buckets.
func bucketOf(v float64) int {
	if v >= math.MaxInt64 {
		return lib.NumPercentileBuckets - 1
	}
	x := int64(math.Ceil(v))
	return sort.Search(lib.NumPercentileBuckets, func(i int) bool { return lib.PercentileBucketLimit(i) >= x })
}

// minMax are the min and max of a histogram datapoint, when it has them.
type minMax struct {
	hasMin bool
	min    float64
	hasMax bool
	max    float64
}

// distribution emits the series of a histogram datapoint whose buckets are
// in c.buckets: count, total and bucket counts as rates (delta) or counters
// (cumulative), max as a gauge and min as a min gauge (the smallest of a
// step), which :percentiles clamps its estimates to.
func (c *otlpConverter) distribution(name, unit string, delta bool, attrs pcommon.Map, start, t pcommon.Timestamp,
	count, sum float64, mm minMax) {
	totalStat, scale := lib.StatTotalAmount, 1.0
	if s := timeScale(unit); s > 0 {
		totalStat, scale = lib.StatTotalTime, s
	}
	emit := func(v float64, kv ...string) {
		if delta {
			c.deltaRate(name, attrs, start, t, v, kv...)
		} else {
			c.counter(name, attrs, start, t, v, kv...)
		}
	}
	emit(count, "statistic", lib.StatCount)
	emit(sum*scale, "statistic", totalStat)
	c.valueRange(name, attrs, delta, start, t, mm, scale)
	u := c.unit(unit)
	for j, ok := range c.bucketOK {
		if ok {
			emit(c.buckets[j], "statistic", lib.StatPercentile, lib.StatPercentile, c.percentileTag(u.prefix, j))
		}
	}
}

// maxSpreadSteps bounds how many steps one delta is spread over; an older
// start is moved forward (a delta over days is unusual and its early part
// would be too old to store anyway).
const maxSpreadSteps = 1440

// deltaRate stores a delta count over (start, t] as per-second rates: each
// storage step B it overlaps gets rate × overlap / step, as a sum datapoint
// at B, so that the pieces add up to the count exactly.
func (c *otlpConverter) deltaRate(name string, attrs pcommon.Map, start, t pcommon.Timestamp, count float64, kv ...string) {
	tStart, tEnd := c.interval(start, t)
	rate := count / (float64(tEnd-tStart) / 1000)
	c.eachStep(tStart, tEnd, func(b, overlap int64) {
		c.pointMs(name, "sum", attrs, b, rate*float64(overlap)/float64(c.step), kv...)
	})
}

// interval returns a delta's interval (start, t] in ms: the step that
// ends at t when it has no usable start.
func (c *otlpConverter) interval(start, t pcommon.Timestamp) (tStart, tEnd int64) {
	tEnd, tStart = int64(t)/1e6, int64(start)/1e6
	if t == 0 {
		tEnd = c.now
	}
	if start == 0 || tStart >= tEnd {
		// No usable interval: the count is for the step that ends at t.
		tStart = tEnd - c.step
	}
	return tStart, tEnd
}

// eachStep calls fn with the boundary B of every storage step (B-step, B]
// that (tStart, tEnd] overlaps, and the overlap in ms, oldest first; at
// most maxSpreadSteps of them, the newest.
func (c *otlpConverter) eachStep(tStart, tEnd int64, fn func(b, overlap int64)) {
	tStart = max(tStart, tEnd-maxSpreadSteps*c.step)
	first := (tStart/c.step + 1) * c.step // the first step boundary after tStart
	for b := first; ; b += c.step {
		lo, hi := max(tStart, b-c.step), min(tEnd, b)
		if hi > lo {
			fn(b, hi-lo)
		}
		if b >= tEnd {
			break
		}
	}
}

// cumulativeRangeSteps is how many steps before the step of a cumulative
// histogram's time its min and max are also written at: the increase
// since the previous export is spread over the steps back to that export,
// which is unknown here, so exports up to this many steps apart are
// covered (a cumulative min and max are since the start, so they hold for
// every earlier step's values too).
const cumulativeRangeSteps = 3

// valueRange emits a histogram datapoint's max (a gauge, the largest of a
// step) and min (a min gauge, the smallest of a step), scaled to seconds
// for time units, at every storage step its counts are stored in, so that
// each step :percentiles clamps to [min, max] has the range of every
// export behind its counts: a delta's at the steps of (start, t], as
// deltaRate spreads its counts; a cumulative's at the steps of
// (start, t] but at most cumulativeRangeSteps before the step of t. The
// points before t's step are quiet, as a counter's zero is, should they
// be too old.
func (c *otlpConverter) valueRange(name string, attrs pcommon.Map, delta bool, start, t pcommon.Timestamp, mm minMax, scale float64) {
	if !mm.hasMin && !mm.hasMax {
		return
	}
	tStart, tEnd := c.interval(start, t)
	if !delta {
		tStart = max(tStart, tEnd-cumulativeRangeSteps*c.step)
	}
	c.eachStep(tStart, tEnd, func(b, _ int64) {
		c.quiet = !delta && b < tEnd
		if mm.hasMax {
			c.pointMs(name, "gauge", attrs, b, mm.max*scale, "statistic", lib.StatMax)
		}
		if mm.hasMin {
			c.pointMs(name, "min-gauge", attrs, b, mm.min*scale, "statistic", lib.StatMin)
		}
		c.quiet = false
	})
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// counter emits a cumulative datapoint as a counter. When it has a start
// time, a zero at the start goes first: the cumulative value is the
// increase since then, so the series' first increase is known and lands
// on the steps after the start, and a new start (a reset) is seen as one.
// A zero older than the store keeps (a series that started long ago) is
// rejected as too old, silently, and the first value then counts from the
// second datapoint on, as Prometheus does.
func (c *otlpConverter) counter(name string, attrs pcommon.Map, start, t pcommon.Timestamp, v float64, kv ...string) {
	if start != 0 && start < t {
		// A start within the same millisecond as the datapoint (a first
		// export right after the start) is moved one millisecond back, so
		// that the store sees two samples and counts the first value.
		z := min(int64(start)/1e6, int64(t)/1e6-1)
		c.quiet = true
		c.pointMs(name, "counter", attrs, z, 0, kv...)
		c.quiet = false
	}
	c.point(name, "counter", attrs, t, v, kv...)
}

// number emits a number datapoint.
func (c *otlpConverter) number(name, dst string, dp pmetric.NumberDataPoint, v float64, extra []string) {
	c.dropped += dp.Exemplars().Len()
	if dp.Flags().NoRecordedValue() {
		return
	}
	c.point(name, dst, dp.Attributes(), dp.Timestamp(), v, extra...)
}

// point validates and adds one datapoint with the current base tags, attrs,
// the name, the dstype and extra key/value pairs.
func (c *otlpConverter) point(name, dst string, attrs pcommon.Map, t pcommon.Timestamp, v float64, extra ...string) {
	if c.invalid(name, checkTime("timestamp", t)) {
		return
	}
	ms := int64(t) / 1e6
	if t == 0 {
		ms = c.now // the spec requires a time; tolerate its absence
	}
	c.pointMs(name, dst, attrs, ms, v, extra...)
}

// invalid rejects a datapoint of metric name for reason (and reports true),
// or reports false when reason is empty.
func (c *otlpConverter) invalid(name string, p problem) bool {
	if p.reason == "" {
		return false
	}
	c.reasons[p.reason]++
	c.rej.add(func() string { return fmt.Sprintf("%s (metric=%q)", p.msg, name) })
	return true
}

// pointMs is point with the time in Unix ms.
func (c *otlpConverter) pointMs(name, dst string, attrs pcommon.Map, ms int64, v float64, extra ...string) {
	key := c.ref.key(c.policy, name, dst, attrs, extra)
	if ref := c.ref.lookup(key); ref != 0 {
		// Fast path: a series from the ref cache, whose tags passed the
		// policy whole before; it goes to the store by ref, with no tags.
		c.spans = append(c.spans, tagSpan{})
		c.points = append(c.points, tsdb.Datapoint{Ref: ref, T: ms, V: v})
		c.zero = append(c.zero, c.quiet)
		c.ref.add(key, ref)
		return
	}
	start, cut := len(c.arena), c.cut
	c.arena = append(c.arena, c.base...)
	c.arena = c.attrs(c.arena, attrs)
	if c.cut != cut {
		key = refKey{} // a hit would not count the cut: not cached
	}
	c.arena = append(c.arena, tags.Tag{Key: tags.NameKey, Value: name}, tags.Tag{Key: tsdb.DSTypeKey, Value: dst})
	for i := 0; i+1 < len(extra); i += 2 {
		c.arena = append(c.arena, tags.Tag{Key: extra[i], Value: extra[i+1]})
	}
	ts := tags.Set(c.arena[start:]).Normalize()
	c.arena = c.arena[:start+len(ts)]
	if reason, msg := c.policy.check(ts); reason != "" {
		c.arena = c.arena[:start]
		if c.quiet {
			return
		}
		c.reasons[reason]++
		c.rej.add(func() string { return fmt.Sprintf("%s (tags=%s)", msg, tagString(ts)) })
		c.arena = c.arena[:start]
		return
	}
	c.spans = append(c.spans, tagSpan{int32(start), int32(len(c.arena))})
	c.points = append(c.points, tsdb.Datapoint{T: ms, V: v})
	c.zero = append(c.zero, c.quiet)
	c.ref.add(key, 0)
}

// fail rejects a datapoint that could not be mapped.
func (c *otlpConverter) fail(name, reason, msg string) {
	c.reasons[reason]++
	c.rej.add(func() string { return fmt.Sprintf("%s (name=%s)", msg, name) })
}
