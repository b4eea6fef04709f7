package ingest

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// otlpEnv is a store with a one-second step, and the OTLP endpoints over
// HTTP and gRPC. It lives inside a testing/synctest bubble: its clock is the
// bubble's (the store's and the SDK's alike), and its connections are in
// memory (an in-process HTTP transport, gRPC over net.Pipe), because a
// goroutine blocked on a real socket is not durably blocked and would stop
// the bubble's clock.
type otlpEnv struct {
	store    *db.DB
	http     *http.Client     // serves /v1/metrics in process
	grpcConn *grpc.ClientConn // to the gRPC server over a pipe
}

func newOTLPEnv(t *testing.T) *otlpEnv {
	t.Helper()
	store, err := db.Open("", db.Options{Step: 1000, MemoryRetention: 3 * 3600_000, MaintenanceInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h, err := New(Options{Appender: store, Step: 1000})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.RegisterOTLP(mux)
	gs := grpc.NewServer(h.GRPCServerOptions()...)
	h.RegisterGRPC(gs)
	ln := newPipeListener()
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///otlp", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.dial(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &otlpEnv{store: store, http: &http.Client{Transport: handlerTransport(mux)}, grpcConn: conn}
}

// pipeListener is a net.Listener whose connections are net.Pipe pairs.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// dial connects to the listener.
func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// handlerTransport serves requests with h in the calling goroutine.
func handlerTransport(h http.Handler) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result(), nil
	})
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// deltaPreference is what OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE
// =delta selects: deltas for counters and histograms, cumulative for
// up-down counters.
func deltaPreference(k sdkmetric.InstrumentKind) metricdata.Temporality {
	switch k {
	case sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindObservableUpDownCounter:
		return metricdata.CumulativeTemporality
	}
	return metricdata.DeltaTemporality
}

func cumulative(sdkmetric.InstrumentKind) metricdata.Temporality {
	return metricdata.CumulativeTemporality
}

// series fetches, per step over the last minute, the sum of the series
// matching q, grouped by the keys.
func (e *otlpEnv) series(t *testing.T, q *tags.Query, by ...string) []tsdb.Series {
	t.Helper()
	set, err := e.store.Fetch(context.Background(), e.window(q, by...))
	if err != nil {
		t.Fatal(err)
	}
	return set.Series
}

// window is the fetch of the last minute; value i is for the step that
// ends at Start + i·1000 ms.
func (e *otlpEnv) window(q *tags.Query, by ...string) tsdb.FetchRequest {
	end := (time.Now().UnixMilli()/1000 + 2) * 1000
	return tsdb.FetchRequest{Query: q, Start: end - 60_000, End: end, Step: 1000, Aggregation: tsdb.AggSum, GroupBy: by}
}

func present(vals []float64) []float64 {
	var out []float64
	for _, v := range vals {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

func sum(vals []float64) float64 {
	s := 0.0
	for _, v := range present(vals) {
		s += v
	}
	return s
}

// TestOTLPWithSDK exports with the OpenTelemetry SDK, over HTTP and gRPC,
// with delta and cumulative temporality, at known times: each case runs in
// a testing/synctest bubble, so the seconds between exports are exact and
// the test takes no wall-clock time waiting for them.
func TestOTLPWithSDK(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, transport string
		temporality     sdkmetric.TemporalitySelector
	}{
		{"http.delta", "http", deltaPreference},
		{"http.cumulative", "http", cumulative},
		{"grpc.delta", "grpc", deltaPreference},
		{"grpc.cumulative", "grpc", cumulative},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				runSDK(t, newOTLPEnv(t), tc.name, tc.transport, tc.temporality)
			})
		})
	}
}

func runSDK(t *testing.T, e *otlpEnv, svc, transport string, temporality sdkmetric.TemporalitySelector) {
	ctx := context.Background()
	var exp sdkmetric.Exporter
	var err error
	if transport == "http" {
		exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL("http://sextant.test/v1/metrics"), otlpmetrichttp.WithHTTPClient(e.http),
			otlpmetrichttp.WithTemporalitySelector(temporality))
	} else {
		exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithGRPCConn(e.grpcConn),
			otlpmetricgrpc.WithTemporalitySelector(temporality))
	}
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", svc))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	defer mp.Shutdown(ctx)
	m := mp.Meter("checkout")
	counter, _ := m.Float64Counter("requests")
	updown, _ := m.Int64UpDownCounter("inflight")
	gauge, _ := m.Float64Gauge("temperature")
	bounds := make([]float64, 0, 40)
	for b := 5.0; b <= 200; b += 5 {
		bounds = append(bounds, b)
	}
	hist, _ := m.Float64Histogram("latency", otelmetric.WithUnit("ms"), otelmetric.WithExplicitBucketBoundaries(bounds...))
	attrs := otelmetric.WithAttributes(attribute.String("route", "/cart"))

	// The histogram's true distribution: 10 to 200 ms, uniform.
	var recorded []float64
	record := func(n int) {
		for i := range n {
			v := 10 + 190*float64(i)/float64(n-1)
			hist.Record(ctx, v, attrs)
			recorded = append(recorded, v)
		}
	}
	var flushed []int64 // when each export's data was collected, about
	flush := func() {
		t.Helper()
		flushed = append(flushed, time.Now().UnixMilli())
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	counter.Add(ctx, 10, attrs)
	updown.Add(ctx, 5, attrs)
	gauge.Record(ctx, 20.5, attrs)
	record(500)
	flush()
	time.Sleep(1300 * time.Millisecond) // synctest: the bubble's clock
	counter.Add(ctx, 30, attrs)
	updown.Add(ctx, -2, attrs)
	record(500)
	flush()
	time.Sleep(3300 * time.Millisecond) // synctest: the bubble's clock
	counter.Add(ctx, 66, attrs)
	gauge.Record(ctx, 21.5, attrs)
	record(1000)
	flush()
	time.Sleep(1100 * time.Millisecond) // synctest: the bubble's clock
	// One more export moves the counters' last partial step out.
	flush()

	base := tags.Eq("service.name", svc)
	named := func(name string, kv ...string) *tags.Query {
		q := tags.And(base, tags.Eq("name", name))
		for i := 0; i+1 < len(kv); i += 2 {
			q = tags.And(q, tags.Eq(kv[i], kv[i+1]))
		}
		return q
	}
	one := func(q *tags.Query) []float64 {
		t.Helper()
		s := e.series(t, q)
		if len(s) != 1 {
			t.Fatalf("%s: %d series", q, len(s))
		}
		return s[0].Values
	}
	delta := strings.HasSuffix(svc, "delta")

	// Counter: rates per second.
	reqs := one(named("requests"))
	if delta {
		// Spread exactly: the rates times the step add up to every count.
		if got := sum(reqs); math.Abs(got-106) > 1e-9 {
			t.Errorf("delta counter: sum of per-second rates = %v, want 106", got)
		}
	} else {
		// Every step wholly between the second and third exports has the
		// rate Δ/Δt (export times are known to a few milliseconds).
		t2, t3 := flushed[1], flushed[2]
		want := 66 / (float64(t3-t2) / 1000)
		start := e.window(nil).Start
		n := 0
		for i, v := range reqs {
			if b := start + int64(i)*1000; b-1000 >= t2+50 && b <= t3-50 {
				n++
				if math.Abs(v-want) > 0.03*want {
					t.Errorf("cumulative counter: rate %v at step %d, want %v", v, b, want)
				}
			}
		}
		if n < 2 {
			t.Errorf("cumulative counter: %d steps inside the interval", n)
		}
	}
	// Up-down counter and gauge: the current values.
	if got := present(one(named("inflight"))); len(got) == 0 || got[len(got)-1] != 3 {
		t.Errorf("up-down counter = %v, want last 3", got)
	}
	if got := present(one(named("temperature"))); len(got) == 0 || got[len(got)-1] != 21.5 {
		t.Errorf("gauge = %v, want last 21.5", got)
	}

	// Histogram: count, totalTime (seconds) and percentile buckets (T, ns).
	count := one(named("latency", "statistic", "count"))
	total := one(named("latency", "statistic", "totalTime"))
	mean := 0.0
	for _, v := range recorded {
		mean += v
	}
	mean /= float64(len(recorded)) * 1000 // seconds
	if delta {
		if got := sum(count); math.Abs(got-2000) > 1e-6 {
			t.Errorf("delta histogram count = %v, want 2000", got)
		}
		if got := sum(total) / sum(count); math.Abs(got-mean) > 1e-9 {
			t.Errorf(":dist-avg = %v, want the mean %v", got, mean)
		}
	} else {
		// Third interval: 1000 values, mean of 10..200 ms = 105 ms.
		c, tt := present(count), present(total)
		if r := tt[len(tt)-3] / c[len(c)-3]; math.Abs(r-0.105) > 1e-9 {
			t.Errorf(":dist-avg over the third interval = %v, want 0.105", r)
		}
	}
	buckets := e.series(t, named("latency", "statistic", "percentile"), "percentile")
	var counts [lib.NumPercentileBuckets]float64
	for _, s := range buckets {
		p, _ := s.Tags.Get("percentile")
		if p[0] != 'T' {
			t.Fatalf("percentile tag %q, want a T (timer) bucket", p)
		}
		var idx int
		for _, c := range p[1:] {
			idx = idx*16 + strings.IndexRune("0123456789ABCDEF", c)
		}
		counts[idx] += sum(s.Values)
	}
	slices.Sort(recorded)
	for _, pct := range []float64{50, 90} {
		want := recorded[int(pct/100*float64(len(recorded)-1))] / 1000
		got := percentileFromBuckets(counts[:], pct) * 1e-9
		if math.Abs(got-want) > 0.1*want {
			t.Errorf("p%v from buckets = %v s, want %v s within bucket error", pct, got, want)
		}
	}
}

// percentileFromBuckets estimates a percentile from bucket counts as the
// stack language's :percentiles does (asl.md §2.9).
func percentileFromBuckets(counts []float64, p float64) float64 {
	total := 0.0
	for _, c := range counts {
		total += c
	}
	prevP, prevB := 0.0, 0.0
	cum := 0.0
	for i, c := range counts {
		cum += c
		nextP := cum / total * 100
		b := float64(lib.PercentileBucketLimit(i))
		if nextP >= p && c > 0 {
			f := (p - prevP) / (nextP - prevP)
			return f*(b-prevB) + prevB
		}
		prevP, prevB = nextP, b
	}
	return math.NaN()
}
