package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	"go.yaml.in/yaml/v3"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func TestParseSizes(t *testing.T) {
	t.Parallel()
	f := func(in string, want []size) {
		t.Helper()
		got, err := parseSizes(in)
		if err != nil {
			t.Fatalf("parseSizes(%q): %v", in, err)
		}
		if !cmp.Equal(got, want, cmp.AllowUnexported(size{})) {
			t.Errorf("parseSizes(%q) = %v, want %v", in, got, want)
		}
	}
	f("100000x360,1000000x60", []size{{100_000, 360}, {1_000_000, 60}})
	f(" 100_000x360 ,", []size{{100_000, 360}})
	f("", nil)
	for _, bad := range []string{"100000", "0x5", "5x0", "ax5", "5x-1", "5x5x5"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q): no error", bad)
		}
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := summarize(d)
	if got.n != 100 || got.p50 != 50*time.Millisecond || got.p99 != 99*time.Millisecond {
		t.Errorf("summarize(1..100 ms) = %+v, want n 100, p50 50 ms, p99 99 ms", got)
	}
	if got := summarize(nil); got != (latency{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
}

func TestReplaceDirectives(t *testing.T) {
	t.Parallel()
	gomod := `module example.com/x

go 1.24

require a.com/b v1.0.0

replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0 // pinned

replace (
	a.com/b v1.0.0 => a.com/c v1.2.0
	a.com/local => ./local
	a.com/abs => /abs/path
)
`
	want := []string{
		"github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0",
		"a.com/b v1.0.0 => a.com/c v1.2.0",
	}
	if diff := cmp.Diff(want, replaceDirectives(gomod)); diff != "" {
		t.Errorf("replaceDirectives (-want +got):\n%s", diff)
	}
}

// TestJaegerConfig checks what makes the Jaeger run comparable: Badger on
// disk with durable (synchronous) writes, and no batch processor or
// exporter queue between the OTLP answer and the write.
func TestJaegerConfig(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Service struct {
			Pipelines map[string]struct {
				Receivers, Processors, Exporters []string
			}
		}
		Extensions map[string]struct {
			Backends map[string]struct {
				Badger struct {
					Directories map[string]string
					Ephemeral   bool
					Consistency bool
				}
			}
			HTTP struct{ Endpoint string }
		}
		Receivers struct {
			OTLP struct {
				Protocols map[string]struct{ Endpoint string }
			}
		}
		Exporters map[string]map[string]any
	}
	if err := yaml.Unmarshal([]byte(jaegerConfig("/d", "h:1", "h:2", "h:3", "h:4")), &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Service.Pipelines["traces"]
	if len(p.Processors) != 0 || !cmp.Equal(p.Receivers, []string{"otlp"}) || !cmp.Equal(p.Exporters, []string{"jaeger_storage_exporter"}) {
		t.Errorf("traces pipeline %+v: want otlp straight into jaeger_storage_exporter", p)
	}
	b := cfg.Extensions["jaeger_storage"].Backends["store"].Badger
	if !b.Consistency || b.Ephemeral || b.Directories["keys"] != "/d/keys" || b.Directories["values"] != "/d/values" {
		t.Errorf("badger %+v: want durable writes on /d", b)
	}
	if _, ok := cfg.Exporters["jaeger_storage_exporter"]["queue"]; ok {
		t.Errorf("the exporter has a queue: answers would come before the writes")
	}
	if cfg.Receivers.OTLP.Protocols["http"].Endpoint != "h:1" || cfg.Receivers.OTLP.Protocols["grpc"].Endpoint != "h:2" ||
		cfg.Extensions["jaeger_query"].HTTP.Endpoint != "h:3" {
		t.Errorf("endpoints: %+v, query %+v", cfg.Receivers, cfg.Extensions["jaeger_query"])
	}
}

// TestRemoteSpool decodes every remote-write body of a spool and checks
// it against the workload: the labels (counters named _total, no
// atlas.dstype), the timestamps and the values, time-major.
func TestRemoteSpool(t *testing.T) {
	t.Parallel()
	w := tsdbtest.NewWorkload(tsdbtest.WorkloadOptions{Series: 120, Samples: 4, Start: start, Sparse: 7})
	sp, err := writeSpool(context.Background(), filepath.Join(t.TempDir(), "spool"), w, protoRemoteWrite, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	if sp.len() != 4*3 {
		t.Fatalf("%d bodies, want 12 (4 samples × 3 batches of at most 50 series)", sp.len())
	}
	var (
		buf    []byte
		points int
		seen   = map[string]bool{}
	)
	for i := range sp.len() {
		b, err := sp.body(i, buf)
		if err != nil {
			t.Fatal(err)
		}
		buf = b
		raw, err := snappy.Decode(nil, b)
		if err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		step := i / 3
		for _, ts := range req.Timeseries {
			points++
			if len(ts.Samples) != 1 || ts.Samples[0].Timestamp != start+int64(step)*60_000 {
				t.Fatalf("body %d: samples %v, want one at step %d", i, ts.Samples, step)
			}
			var name string
			rest := tags.Set{}
			for j, l := range ts.Labels {
				if j > 0 && l.Name <= ts.Labels[j-1].Name {
					t.Fatalf("labels %v not sorted", ts.Labels)
				}
				if l.Name == "__name__" {
					name = l.Value
				} else {
					rest = append(rest, tags.Tag{Key: l.Name, Value: l.Value})
				}
			}
			// Find the workload series: same tags but name and dstype.
			k := -1
			for s := range w.Series {
				n := w.Series[s].Name()
				if w.Kinds[s] == tsdbtest.Counter {
					n += "_total"
				}
				if n == name && sameTags(w.Series[s], rest) {
					k = s
					break
				}
			}
			if k < 0 {
				t.Fatalf("body %d: series %v matches no workload series", i, ts.Labels)
			}
			if v := w.Values[k][step]; math.Float64bits(v) != math.Float64bits(ts.Samples[0].Value) {
				t.Errorf("series %d step %d: value %v, want %v", k, step, ts.Samples[0].Value, v)
			}
			seen[name+rest.String()+strconv.Itoa(step)] = true
		}
	}
	if points != sp.points || len(seen) != points {
		t.Errorf("%d samples decoded (%d distinct), the spool counts %d", points, len(seen), sp.points)
	}
	if points >= 120*4 {
		t.Errorf("%d samples: the sparse series' absent ones were sent", points)
	}
}

// sameTags reports whether workload series s has the tags of rest besides
// its name and dstype.
func sameTags(s, rest tags.Set) bool {
	n := 0
	for _, t := range s {
		if t.Key == tags.NameKey || t.Key == tsdb.DSTypeKey {
			continue
		}
		if v, ok := rest.Get(t.Key); !ok || v != t.Value {
			return false
		}
		n++
	}
	return n == len(rest)
}

// TestSendSpool sends both protocols' spools to the real ingest handler
// on a real store and counts what it holds; the CPU figure is this test
// process's own.
func TestSendSpool(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{protoRemoteWrite, protoAtlas} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			store, srv := ingestServer(t)

			w := tsdbtest.NewWorkload(tsdbtest.WorkloadOptions{Series: 300, Samples: 30, Start: start})
			sp, err := writeSpool(context.Background(), filepath.Join(t.TempDir(), "spool"), w, protocol, 100)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.close()
			l, err := sendSpool(context.Background(), sp, targetFor(srv.URL, protocol), 1, os.Getpid(), time.Now)
			if err != nil {
				t.Fatal(err)
			}
			if l.items != 300*30 || l.requests != 90 || l.errors != 0 || l.wall <= 0 || l.rss <= 0 {
				t.Errorf("load %+v: want 9 000 datapoints in 90 requests, no errors, a wall time and an RSS", l)
			}
			set, err := store.Fetch(context.Background(), tsdb.FetchRequest{
				Query: tags.True(), Aggregation: tsdb.AggCount, Start: start, End: storeNow, Step: 60_000})
			if err != nil {
				t.Fatal(err)
			}
			// Counters need two samples for a rate: count from the second step.
			for i, v := range set.Series[0].Values[1:] {
				if v != 300 {
					t.Errorf("step %d: %v series, want 300", i+1, v)
				}
			}
		})
	}
}

func TestSendSpoolErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no room", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	w := tsdbtest.NewWorkload(tsdbtest.WorkloadOptions{Series: 10, Samples: 3, Start: start})
	sp, err := writeSpool(context.Background(), filepath.Join(t.TempDir(), "spool"), w, protoAtlas, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	l, err := sendSpool(context.Background(), sp, targetFor(srv.URL, protoAtlas), 2, os.Getpid(), time.Now)
	if err == nil || !strings.Contains(err.Error(), "3 of 3 requests failed") || !strings.Contains(err.Error(), "status 503: no room") || l.errors != 3 {
		t.Errorf("sendSpool to a full server: %+v, %v", l, err)
	}
}

func TestGroupedSum(t *testing.T) {
	t.Parallel()
	w := tsdbtest.NewWorkload(tsdbtest.WorkloadOptions{Series: 5000, Samples: 6, Start: start})
	g, err := newGroupedSum(w)
	if err != nil {
		t.Fatal(err)
	}
	if g.name != "cpu.gauge.02" || g.series != 100 || g.apps != 100 {
		t.Errorf("grouped sum of %q over %d series, %d apps; want cpu.gauge.02, 100, 100", g.name, g.series, g.apps)
	}
	if got, want := g.promQ.Get("query"), `sum by (app) ({__name__="cpu.gauge.02"})`; got != want {
		t.Errorf("query %q, want %q", got, want)
	}
	if g.promQ.Get("start") != strconv.FormatInt(start/1000+60, 10) || g.promQ.Get("end") != strconv.FormatInt(start/1000+360, 10) ||
		g.graphQ.Get("step") != "60s" || g.graphQ.Get("q") != "name,cpu.gauge.02,:eq,(,app,),:by" {
		t.Errorf("prom %v, graph %v", g.promQ, g.graphQ)
	}

	small := groupedSum{apps: 2}
	f := func(check func([]byte) error, body string, ok bool) {
		t.Helper()
		if err := check([]byte(body)); (err == nil) != ok {
			t.Errorf("check(%s) = %v, want ok %v", body, err, ok)
		}
	}
	f(small.checkGraph, `{"metrics":[{},{}]}`, true)
	f(small.checkGraph, `{"metrics":[{}]}`, false)
	f(small.checkGraph, `not json`, false)
	f(small.checkProm, `{"status":"success","data":{"result":[{"values":[[1,"2"]]},{"values":[[1,"3"]]}]}}`, true)
	f(small.checkProm, `{"status":"success","data":{"result":[{"values":[[1,"2"]]},{"values":[]}]}}`, false)
	f(small.checkProm, `{"status":"error","data":{"result":[{"values":[[1,"2"]]},{"values":[[1,"3"]]}]}}`, false)
	f(small.checkProm, `{"status":"success","data":{"result":[]}}`, false)
	f(checkTrace, `{"data":[{"spans":[1,2,3,4,5,6,7,8,9,10]}]}`, true)
	f(checkTrace, `{"data":[{"spans":[1,2,3]}]}`, false)
	f(checkTrace, `{"data":[]}`, false)
	f(checkSearch, `{"data":[{}]}`, true)
	f(checkSearch, `{"data":[]}`, false)
}

// TestWriteReport checks the ratios: Sextant's figure over the peer's of
// the same size.
func TestWriteReport(t *testing.T) {
	t.Parallel()
	sz := size{1000, 10}
	metrics := []metricsRun{
		{server: "sextant", protocol: protoRemoteWrite, size: sz, load: load{items: 30_000, cpu: 2, wall: 1, rss: 3 << 20},
			prom: latency{n: 1, p50: 10 * time.Millisecond}, graph: latency{n: 1, p50: 5 * time.Millisecond}},
		{server: "victoria-metrics", protocol: protoRemoteWrite, size: sz, load: load{items: 30_000, cpu: 3, wall: 1, rss: 6 << 20},
			prom: latency{n: 1, p50: 40 * time.Millisecond}},
		{server: "sextant", protocol: protoAtlas, size: size{5, 5}, load: load{items: 25, cpu: 1, wall: 1, rss: 1 << 20}},
	}
	spans := []spansRun{
		{server: "sextant", load: load{items: 1000, cpu: 1, wall: 1, rss: 1 << 20}, byID: latency{n: 1, p50: time.Millisecond}, search: latency{n: 1, p50: 2 * time.Millisecond}},
		{server: "jaeger", load: load{items: 1000, cpu: 4, wall: 2, rss: 1 << 20}, byID: latency{n: 1, p50: 4 * time.Millisecond}, search: latency{n: 1, p50: 4 * time.Millisecond}},
	}
	var out bytes.Buffer
	writeReport(&out, metrics, spans)
	s := out.String()
	for _, want := range []string{
		"| 1000x10 | remote-write | **1.50×** | **0.50×** | **0.25×** | 0.12× |",
		"| sextant | remote-write | 1000x10 | 30000 | 2.0 | **15000** | 3 MiB | **3.07 KiB** | 5.00 / 0.00 ms | **10.00** / 0.00 ms |",
		"| **4.00×** | **0.25×** | **0.50×** |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "| 5x5 | atlas |") {
		t.Errorf("a ratio without a peer of the same size:\n%s", s)
	}
}

func TestVSUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"vs"},
		{"vs", "-sextant", "x", "-sizes", "10"},
		{"vs", "-sextant", "x", "-protocols", "graphite"},
		{"vs", "-sextant", "x", "-peers", "prometheus"},
		{"vs", "-sextant", "x", "-c", "0"},
		{"vs", "-sextant", "x", "-protocols", ""},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr, fixedNow); code != 2 {
			t.Errorf("%v exited %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// TestVSSmoke runs `vs` on tiny sizes against the real Sextant binary
// alone (building the peers takes minutes, so they are left out): both
// protocols, the grouped sum on both APIs, the span load, trace by id and
// search, each answer checked.
func TestVSSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "sextant")
	if out, err := exec.Command("go", "build", "-o", bin, "../sextant").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"vs", "-sextant", bin, "-peers", "", "-sizes", "500x20", "-spans", "3000", "-queries", "3", "-trace-gets", "5", "-batch", "200"}
	if code := run(context.Background(), args, &stdout, &stderr, time.Now); code != 0 {
		t.Fatalf("vs exited %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, re := range []string{
		`RESULT vs: server=sextant protocol=remote-write size=500x20 datapoints=10000 requests=60 .* grouped-sum-series=10 `,
		`RESULT vs: server=sextant protocol=atlas size=500x20 datapoints=10000 requests=60 `,
		`RESULT vs: server=sextant spans=3000 requests=3 `,
		`\| sextant \| atlas \| 500x20 \|`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", re, out)
		}
	}
}

// TestWriteSpoolCancelled stops spooling when the run is interrupted and
// leaves no file behind.
func TestWriteSpoolCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := tsdbtest.NewWorkload(tsdbtest.WorkloadOptions{Series: 10, Samples: 3, Start: start})
	path := filepath.Join(t.TempDir(), "spool")
	if _, err := writeSpool(ctx, path, w, protoAtlas, 10); err != context.Canceled {
		t.Errorf("writeSpool after cancel: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("spool file left behind: %v", err)
	}
}

// TestTimeGetsChecksEachAnswer checks that timeGets checks every distinct
// answer, once: a server whose answer changes once it has been checked
// fails the run, and a repeated answer is not checked again.
func TestTimeGetsChecksEachAnswer(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 5 && r.URL.Query().Get("flip") != "" {
			w.Write([]byte("bad"))
			return
		}
		w.Write([]byte("good"))
	}))
	defer srv.Close()
	checks := 0
	check := func(b []byte) error {
		checks++
		if string(b) != "good" {
			return fmt.Errorf("answer %q", b)
		}
		return nil
	}
	ctx := context.Background()
	lat, err := timeGets(ctx, srv.Client(), slices.Repeat([]string{srv.URL}, 8), check, time.Now)
	if err != nil || checks != 1 || lat.p50 <= 0 {
		t.Fatalf("timeGets = %+v, %v after %d checks; want no error after one check", lat, err, checks)
	}
	n.Store(0)
	if _, err := timeGets(ctx, srv.Client(), slices.Repeat([]string{srv.URL + "?flip=1"}, 8), check, time.Now); err == nil {
		t.Fatal("timeGets passed an answer that changed to a bad one")
	}
}
