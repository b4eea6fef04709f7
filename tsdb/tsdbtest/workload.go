package tsdbtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Workload is the project's benchmark and test workload: Series[i] has
// Values[i][t] at Start + t*Interval. A NaN value means the series did not
// report that sample (sparse series); Batch skips it. Counters carry their
// cumulative value and atlas.dstype=counter, everything else
// atlas.dstype=gauge, as a client publishing Atlas payloads would.
type Workload struct {
	Series   []tags.Set
	Values   [][]float64
	Kinds    []Kind // per series
	Start    int64  // ms
	Interval int64  // ms
}

// Kind is the value process of a workload series.
type Kind uint8

// The kinds of series. Metric name n has kind Counter when n%5 is 0 or 1,
// Gauge when it is 2 or 3, and Constant when it is 4: two fifths counters,
// two fifths gauges, one fifth constants, the mix of a typical service.
const (
	// Counter is an integer that grows at a noisy, per-series rate that is
	// log-uniform in [0.01, 1000) per second.
	Counter Kind = iota
	// Gauge is a random walk at full float64 precision (the hard case for
	// value compression), reflected at zero.
	Gauge
	// Constant never changes: a configured limit, a size, a flag.
	Constant
)

// String returns the kind's lowercase name.
func (k Kind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Constant:
		return "constant"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// WorkloadOptions shapes a workload. Zero fields take the defaults of the
// benchmarks in docs/benchmarks.md.
type WorkloadOptions struct {
	// Series is the number of series (default 100 000).
	Series int
	// Samples is the number of samples per series (default 360).
	Samples int
	// Start is the timestamp of sample 0, Unix ms.
	Start int64
	// Interval is the time between samples in ms (default 60 000).
	Interval int64
	// Seed selects the values and node names (default 1). Values depend
	// only on the seed and the series index, so generating the workload
	// series by series or step by step gives the same data.
	Seed uint64
	// Sparse, when positive, makes one series in Sparse report only in
	// bursts: each such series is present for about a fifth of the
	// samples, in runs, and NaN (absent) otherwise.
	Sparse int
	// Names, Apps, Nodes, Regions and Statuses are the number of distinct
	// values of each tag (defaults 50, 100, 2 000, 3, 5).
	Names, Apps, Nodes, Regions, Statuses int
}

func (o WorkloadOptions) withDefaults() WorkloadOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Series, 100_000)
	def(&o.Samples, 360)
	def(&o.Names, 50)
	def(&o.Apps, 100)
	def(&o.Nodes, 2000)
	def(&o.Regions, 3)
	def(&o.Statuses, 5)
	o.Regions = min(o.Regions, len(regions))
	o.Statuses = min(o.Statuses, len(statuses))
	if o.Interval <= 0 {
		o.Interval = 60_000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// Tag values. appPrefixes has ten entries and "api" first, so a tenth of
// the apps start with "api" (what the prefix-regex benchmarks select).
var (
	appPrefixes = [...]string{"api", "web", "db", "cache", "queue", "auth", "search", "feed", "media", "edge"}
	nameStems   = [...]string{"requests", "latency", "cpu", "heap", "threads", "errors", "bytes.in", "sessions", "gc.pause", "backlog"}
	regions     = [...]string{"us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "sa-east-1"}
	statuses    = [...]string{"200", "500", "404", "304", "503", "201", "429"}
)

// NewWorkload generates the workload opts describes. Series i has metric
// name i%Names; the rest of i walks the nodes, so consecutive series share
// a node and a step of the workload publishes a node's metrics together,
// like a real client. Each node belongs to one app and one region; the
// status tag varies with the node and the replica; when there are more
// series than names × nodes × statuses, a shard tag (present only on the
// extra replicas) keeps them distinct.
func NewWorkload(opts WorkloadOptions) *Workload {
	o := opts.withDefaults()
	w := &Workload{
		Series:   make([]tags.Set, o.Series),
		Values:   make([][]float64, o.Series),
		Kinds:    make([]Kind, o.Series),
		Start:    o.Start,
		Interval: o.Interval,
	}
	names := make([]string, o.Names)
	for n := range names {
		names[n] = fmt.Sprintf("%s.%s.%02d", nameStems[n%len(nameStems)], nameKind(n), n)
	}
	apps := make([]string, o.Apps)
	for a := range apps {
		apps[a] = fmt.Sprintf("%s%02d", appPrefixes[a%len(appPrefixes)], a/len(appPrefixes))
	}
	nodes := make([]string, o.Nodes)
	for n := range nodes {
		nodes[n] = fmt.Sprintf("i-%08x", uint32(rand.New(rand.NewPCG(o.Seed, uint64(n)^0x6e6f6465)).Uint64()))
	}
	dstypes := [...]string{Counter: "counter", Gauge: "gauge", Constant: "gauge"}
	for i := range w.Series {
		n := i % o.Names
		k := i / o.Names
		node := k % o.Nodes
		replica := k / o.Nodes
		kind := nameKind(n)
		s := tags.Set{
			{Key: tags.NameKey, Value: names[n]},
			{Key: tsdb.DSTypeKey, Value: dstypes[kind]},
			{Key: "app", Value: apps[node%o.Apps]},
			{Key: "node", Value: nodes[node]},
			{Key: "region", Value: regions[(node/o.Apps)%o.Regions]},
			{Key: "status", Value: statuses[(replica+node)%o.Statuses]},
		}
		if shard := replica / o.Statuses; shard > 0 {
			s = append(s, tags.Tag{Key: "shard", Value: "s" + strconv.Itoa(shard)})
		}
		w.Series[i] = s.Normalize()
		w.Kinds[i] = kind
		w.Values[i] = seriesValues(o, i, kind)
	}
	return w
}

// nameKind is the kind of metric name n.
func nameKind(n int) Kind {
	switch n % 5 {
	case 0, 1:
		return Counter
	case 2, 3:
		return Gauge
	}
	return Constant
}

// seriesValues generates series i's samples from its own random stream, so
// that a series' values do not depend on how many other series exist.
func seriesValues(o WorkloadOptions, i int, kind Kind) []float64 {
	r := rand.New(rand.NewPCG(o.Seed, uint64(i)))
	vals := make([]float64, o.Samples)
	seconds := float64(o.Interval) / 1000
	switch kind {
	case Counter:
		v := math.Floor(r.Float64() * 1e6)
		rate := math.Pow(10, -2+5*r.Float64()) // per second
		for t := range vals {
			vals[t] = v
			v += math.Floor(rate * seconds * (0.5 + r.Float64()))
		}
	case Gauge:
		v := r.Float64() * 100
		stride := 0.5 + 5*r.Float64()
		for t := range vals {
			vals[t] = v
			v = math.Abs(v + (r.Float64()-0.5)*stride)
		}
	case Constant:
		var v float64
		switch i % 3 {
		case 0:
			v = 1
		case 1:
			v = float64(int64(1) << (20 + i%14))
		default:
			v = float64(1 + r.IntN(64))
		}
		for t := range vals {
			vals[t] = v
		}
	}
	if o.Sparse > 0 && i%o.Sparse == o.Sparse-1 {
		// Runs of presence and absence: a series that reports for a few
		// steps after an event, then goes quiet.
		present := r.IntN(5) == 0
		for t := range vals {
			if r.IntN(8) == 0 {
				present = r.IntN(5) == 0
			}
			if !present {
				vals[t] = math.NaN()
			}
		}
	}
	return vals
}

// Samples returns the number of samples per series.
func (w *Workload) Samples() int {
	if len(w.Values) == 0 {
		return 0
	}
	return len(w.Values[0])
}

// End returns the end of the workload's time range (exclusive), Unix ms.
func (w *Workload) End() int64 { return w.Start + int64(w.Samples())*w.Interval }

// Batch fills b with the datapoints of sample t for series [from, to),
// skipping absent (NaN) samples of sparse series. Refs, when non-nil, are
// used instead of tags.
func (w *Workload) Batch(b *tsdb.Batch, t, from, to int, refs []tsdb.SeriesRef) {
	ts := w.Start + int64(t)*w.Interval
	for i := from; i < to; i++ {
		v := w.Values[i][t]
		if math.IsNaN(v) {
			continue
		}
		p := tsdb.Datapoint{T: ts, V: v}
		if refs != nil && refs[i] != 0 {
			p.Ref = refs[i]
		} else {
			p.Tags = w.Series[i]
		}
		b.Points = append(b.Points, p)
	}
}

// AppendAtlas appends to dst one Atlas publish body (the lib/wire JSON
// format, {"tags":{...},"metrics":[...]}) with the datapoints of sample t
// for series [from, to), and returns the extended buffer. Absent samples
// of sparse series are left out.
func (w *Workload) AppendAtlas(dst []byte, t, from, to int) []byte {
	ts := w.Start + int64(t)*w.Interval
	dst = append(dst, `{"tags":{"source":"sextant-load"},"metrics":[`...)
	first := true
	for i := from; i < to; i++ {
		v := w.Values[i][t]
		if math.IsNaN(v) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `{"tags":{`...)
		for j, tag := range w.Series[i] {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, tag.Key)
			dst = append(dst, ':')
			dst = strconv.AppendQuote(dst, tag.Value)
		}
		dst = append(dst, `},"timestamp":`...)
		dst = strconv.AppendInt(dst, ts, 10)
		dst = append(dst, `,"value":`...)
		dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// BenchSize is the size of benchmark workloads: 100 000 series × 360
// samples at 60 s (6 h), as docs/benchmarks.md reports, unless
// SEXTANT_BENCH_SERIES and SEXTANT_BENCH_SAMPLES shrink it for smoke runs.
func BenchSize() (series, samples int) {
	series, samples = 100_000, 360
	if v, err := strconv.Atoi(os.Getenv("SEXTANT_BENCH_SERIES")); err == nil && v > 0 {
		series = v
	}
	if v, err := strconv.Atoi(os.Getenv("SEXTANT_BENCH_SAMPLES")); err == nil && v > 0 {
		samples = v
	}
	return series, samples
}

// LoadWorkload returns the standard workload (WorkloadOptions defaults, no
// sparse series) of n series × samples at 60 s starting at start (ms). It
// generates it afresh (about a second for the full size): callers that run
// several benchmarks on it keep their own copy.
func LoadWorkload(tb testing.TB, n, samples int, start int64) *Workload {
	tb.Helper()
	return NewWorkload(WorkloadOptions{Series: n, Samples: samples, Start: start})
}

// AtlasBody returns one Atlas publish body of the first sample of n series
// of the standard workload, starting at 1 700 006 400 000 ms.
func AtlasBody(tb testing.TB, n int) []byte {
	tb.Helper()
	w := NewWorkload(WorkloadOptions{Series: n, Samples: 1, Start: 1_700_006_400_000})
	return w.AppendAtlas(nil, 0, 0, n)
}
