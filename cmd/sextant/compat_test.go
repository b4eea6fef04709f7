package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// The compatibility suite of issue #10 (`make compat`): real clients,
// built from the Go module proxy by the suite itself into a temporary
// directory (never added to go.mod), send to the real binary, and what
// Sextant stored is checked against what each client reports it sent. It
// runs only with SEXTANT_COMPAT=1, so plain `go test ./...` skips it.
// SEXTANT_COMPAT_BIN, when set, is a directory that keeps the built
// clients between runs.

// Client versions: pinned so the suite is reproducible. vmagent v1.151.0
// is the newest that builds with this repository's Go (1.26).
const (
	telemetrygenPkg = "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0"
	vmagentPkg      = "github.com/VictoriaMetrics/VictoriaMetrics/app/vmagent@v1.151.0"
	spectatorV0     = "github.com/Netflix/spectator-go@v0.1.6"
	spectatorV2     = "github.com/Netflix/spectator-go/v2@v2.0.0"
	zipkinGo        = "github.com/openzipkin/zipkin-go@v0.4.3"
)

func compatEnabled(t *testing.T) {
	t.Helper()
	if os.Getenv("SEXTANT_COMPAT") != "1" {
		t.Skip("compatibility suite: set SEXTANT_COMPAT=1 (make compat)")
	}
}

// compatBinDir is where the clients are built.
func compatBinDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("SEXTANT_COMPAT_BIN"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// goInstall builds pkg@version into dir (once per directory) and returns
// the binary's path.
func goInstall(t *testing.T, dir, pkg string) string {
	t.Helper()
	path, _, _ := strings.Cut(pkg, "@")
	bin := filepath.Join(dir, filepath.Base(path))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	start := time.Now()
	cmd := exec.Command("go", "install", pkg)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", pkg, err, out)
	}
	t.Logf("built %s in %v", pkg, time.Since(start).Round(time.Second))
	return bin
}

// goProgram builds a one-file program requiring modules into dir/name.
func goProgram(t *testing.T, dir, name, src string, modules ...string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	start := time.Now()
	srcDir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(srcDir, 0o755)
	os.WriteFile(filepath.Join(srcDir, "go.mod"), []byte("module "+name+"\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(srcDir, "main.go"), []byte(src), 0o644)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = srcDir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	run(append([]string{"get"}, modules...)...)
	run("mod", "tidy")
	run("build", "-o", bin, ".")
	t.Logf("built %s (%v) in %v", name, modules, time.Since(start).Round(time.Second))
	return bin
}

// compatServer runs the real binary with every ingest listener on a free
// port and returns its addresses.
type compatServer struct {
	http, otlpGRPC, zipkin, spectatord string
}

func startCompatServer(t *testing.T) compatServer {
	t.Helper()
	s := compatServer{otlpGRPC: freeAddr(t), zipkin: freeAddr(t), spectatord: freeUDPAddr(t)}
	b := runBinary(t, buildBinary(t), nil, "--data-dir", t.TempDir(), "--memory-retention", "1h",
		"--otlp-grpc-listen", s.otlpGRPC, "--zipkin-listen", s.zipkin, "--spectatord-listen", s.spectatord)
	t.Cleanup(func() { b.cmd.Process.Kill(); b.cmd.Wait() })
	s.http = b.addr
	return s
}

// runClient runs a client and returns its combined output.
func runClient(t *testing.T, timeout time.Duration, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
	}
	return string(out)
}

// stored is the sum (rates: the increase) of a one-second-step line over
// the last 10 minutes.
func stored(t *testing.T, addr, q string) float64 {
	t.Helper()
	return total(first(graph(t, addr, q, time.Now().Add(-10*time.Minute), time.Now().Add(time.Minute))))
}

func TestCompatTelemetrygen(t *testing.T) {
	compatEnabled(t)
	t.Parallel()
	tg := goInstall(t, compatBinDir(t), telemetrygenPkg)
	srv := startCompatServer(t)
	rec := newOTLPRecorder(t, srv.http)
	// Every metric type, over OTLP/HTTP (through a recorder of what was
	// sent) and gRPC: 30 datapoints, 10 a second.
	for _, tc := range []struct{ typ, temporality, transport string }{
		{"Sum", "cumulative", "http"}, {"Sum", "delta", "grpc"}, {"Gauge", "", "http"},
		{"Histogram", "cumulative", "grpc"}, {"Histogram", "delta", "http"},
		{"ExponentialHistogram", "delta", "http"}, {"ExponentialHistogram", "cumulative", "http"},
	} {
		name := "tg." + strings.ToLower(tc.typ) + "." + tc.temporality + tc.transport
		args := []string{"metrics", "--metric-type", tc.typ, "--metrics", "30", "--rate", "10",
			"--otlp-metric-name", name, "--otlp-insecure"}
		if tc.temporality != "" {
			args = append(args, "--aggregation-temporality", tc.temporality)
		}
		if tc.transport == "http" {
			args = append(args, "--otlp-http", "--otlp-endpoint", rec.addr)
		} else {
			args = append(args, "--otlp-endpoint", srv.otlpGRPC)
		}
		out := runClient(t, 2*time.Minute, tg, args...)
		if strings.Contains(out, "\tERROR\t") || !strings.Contains(out, `"metrics": 30`) {
			t.Errorf("%s: telemetrygen did not report 30 metrics generated without errors:\n%s", name, out)
		}
		q := "name," + name + ",:eq"
		// What telemetrygen sent, as the OTLP temporality defines it: its
		// sums count 0, 1, … 29 (cumulative: an increase of 29; delta: 435
		// in all); its histograms hold 10 values each, all 30 under one
		// start time (cumulative: 10 in all; delta: 300).
		want := map[string]float64{"Sumcumulative": 29, "Sumdelta": 435, "Histogramcumulative": 10, "Histogramdelta": 300}[tc.typ+tc.temporality]
		if tc.typ == "ExponentialHistogram" {
			// Random counts: what the recorder saw.
			want = rec.count(name)
		}
		switch tc.typ {
		case "Sum":
			if got := stored(t, srv.http, q); math.Abs(got-want) > 1e-6 {
				t.Errorf("%s: stored increase %v, telemetrygen sent %v", name, got, want)
			}
		case "Gauge":
			if lines := graph(t, srv.http, q, time.Now().Add(-10*time.Minute), time.Now().Add(time.Minute)); len(lines) != 1 {
				t.Errorf("%s: %d lines", name, len(lines))
			}
		default:
			if got := stored(t, srv.http, q+",statistic,count,:eq,:and"); math.Abs(got-want) > 1e-6 {
				t.Errorf("%s: stored count %v, telemetrygen sent %v", name, got, want)
			}
			// Percentiles stay within the recorded values' buckets.
			for _, p := range first(graph(t, srv.http, q+",(,99,),:percentiles", time.Now().Add(-10*time.Minute), time.Now().Add(time.Minute))) {
				if p < 0 || p > 10000 {
					t.Errorf("%s: p99 %v outside the histogram's bounds", name, p)
				}
			}
		}
	}
	// Traces: 20 traces of 1 + 2 spans over OTLP/gRPC.
	out := runClient(t, 2*time.Minute, tg, "traces", "--traces", "20", "--child-spans", "2", "--service", "tgsvc",
		"--otlp-insecure", "--otlp-endpoint", srv.otlpGRPC)
	if strings.Contains(out, "\tERROR\t") || !strings.Contains(out, `"traces": 20`) {
		t.Errorf("telemetrygen did not report 20 traces generated without errors:\n%s", out)
	}
	code, body := get(t, "http://"+srv.http+"/api/traces?service=tgsvc&limit=100&lookback=1h")
	var res struct{ Data []struct{ Spans []any } }
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || len(res.Data) != 20 {
		t.Fatalf("traces: %d %v, %d traces, want 20", code, err, len(res.Data))
	}
	for _, tr := range res.Data {
		if len(tr.Spans) != 3 {
			t.Errorf("a trace of %d spans, want 3", len(tr.Spans))
		}
	}
}

// promText serves a static Prometheus target with names and labels the
// Atlas rules would rewrite.
const promText = `# TYPE compat_requests_total counter
compat_requests_total{instance_addr="127.0.0.1:9100",région="Île",a="x"} 42
# TYPE job:compat:rate5m gauge
job:compat:rate5m 3
`

// tooManyLabels is a series of 70 labels: over the tag limit, dropped
// alone while the rest of each remote-write request is stored.
var tooManyLabels = func() string {
	var b strings.Builder
	b.WriteString("compat_wide{")
	for i := range 70 {
		fmt.Fprintf(&b, "l%d=\"v\",", i)
	}
	return strings.TrimSuffix(b.String(), ",") + "} 1\n"
}()

func TestCompatVmagent(t *testing.T) {
	compatEnabled(t)
	t.Parallel()
	vm := goInstall(t, compatBinDir(t), vmagentPkg)
	srv := startCompatServer(t)
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, promText+tooManyLabels)
	}))
	defer static.Close()
	cfg := filepath.Join(t.TempDir(), "scrape.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: sextant
    static_configs: [{targets: [%q]}]
  - job_name: static
    static_configs: [{targets: [%q]}]
`, srv.http, strings.TrimPrefix(static.URL, "http://"))), 0o644)
	vmAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, vm, "-promscrape.config="+cfg, "-remoteWrite.url=http://"+srv.http+"/api/v1/write",
		"-remoteWrite.tmpDataPath="+t.TempDir(), "-httpListenAddr="+vmAddr, "-remoteWrite.flushInterval=200ms")
	var out strings.Builder
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	for _, q := range []string{
		"name,job:compat:rate5m,:eq,job,static,:eq,:and",
		"name,compat_requests_total,:eq,instance_addr,127.0.0.1:9100,:eq,:and,région,Île,:eq,:and,a,x,:eq,:and",
		"job,sextant,:eq,instance," + srv.http + ",:eq,:and",
	} {
		eventually(t, q, func() bool {
			for _, xs := range graph(t, srv.http, q, time.Now().Add(-time.Minute), time.Now().Add(time.Minute)) {
				for _, x := range xs {
					if !math.IsNaN(x) {
						return true
					}
				}
			}
			return false
		})
	}
	// What vmagent reports: requests answered 2xx, none dropped or
	// rejected.
	resp, err := http.Get("http://" + vmAddr + "/metrics")
	if err != nil {
		cancel()
		werr := cmd.Wait()
		t.Fatalf("vmagent /metrics: %v (vmagent: %v)\n%s", err, werr, out.String())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(b)
	ok := regexp.MustCompile(`(?m)^vmagent_remotewrite_requests_total\{[^}]*status_code="2(?:XX|\d\d)"[^}]*\} (\d+)`).FindStringSubmatch(metrics)
	if ok == nil || ok[1] == "0" {
		t.Errorf("vmagent sent no successful remote write request")
	}
	for _, m := range regexp.MustCompile(`(?m)^(vmagent_remotewrite_(?:packets_dropped|samples_dropped|requests)_total\{[^}]*\}) (\d+)`).FindAllStringSubmatch(metrics, -1) {
		if strings.Contains(m[1], "dropped") && m[2] != "0" {
			t.Errorf("vmagent reports %s = %s", m[1], m[2])
		}
		// 415 is vmagent asking for its own protocol first and falling
		// back to Prometheus remote write, as designed.
		if strings.Contains(m[1], `status_code="4`) && !strings.Contains(m[1], `"415"`) && m[2] != "0" {
			t.Errorf("vmagent reports %s = %s", m[1], m[2])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(out.String(), "unexpected status code") {
		t.Errorf("vmagent logged rejected requests:\n%s", out.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// spectatorV0Src publishes with spectator-go v0.1.6's HTTP publisher and
// prints what it recorded.
const spectatorV0Src = `package main

import (
	"fmt"
	"os"
	"time"

	spectator "github.com/Netflix/spectator-go"
)

type logger struct{}

func (logger) Debugf(string, ...interface{}) {}
func (logger) Infof(string, ...interface{})  {}
func (logger) Errorf(f string, a ...interface{}) { fmt.Printf("ERROR "+f+"\n", a...) }

func main() {
	r := spectator.NewRegistry(&spectator.Config{Frequency: time.Minute, Timeout: 5 * time.Second, BatchSize: 10000,
		Uri: os.Args[1], CommonTags: map[string]string{"nf.app": "compat"}, Log: logger{}})
	if err := r.Start(); err != nil {
		panic(err)
	}
	for i := 0; i < 7; i++ {
		r.Counter("spectator.v0.requests", map[string]string{"status": "200"}).Increment()
	}
	r.Timer("spectator.v0.latency", nil).Record(250 * time.Millisecond)
	r.Gauge("spectator.v0.queue", nil).Set(11)
	r.Stop() // publishes once, synchronously
	// The registry's own account of that publish.
	sent := r.Counter("spectator.measurements", map[string]string{"id": "sent"}).Count()
	dropped := 0.0
	for _, e := range []string{"validation", "http-error", "other"} {
		dropped += r.Counter("spectator.measurements", map[string]string{"id": "dropped", "error": e}).Count()
	}
	fmt.Printf("sent %v dropped %v\n", sent, dropped)
}
`

// spectatorV2Src writes SpectatorD lines over UDP with spectator-go v2
// and prints what it recorded.
const spectatorV2Src = `package main

import (
	"fmt"
	"os"
	"time"

	"github.com/Netflix/spectator-go/v2/spectator"
)

func main() {
	cfg, err := spectator.NewConfig("udp://"+os.Args[1], nil, nil)
	if err != nil {
		panic(err)
	}
	r, err := spectator.NewRegistry(cfg)
	if err != nil {
		panic(err)
	}
	r.Counter("spectator.v2.requests", map[string]string{"status": "200"}).Add(5)
	r.Timer("spectator.v2.latency", nil).Record(500 * time.Millisecond)
	r.PercentileTimer("spectator.v2.ptimer", nil).Record(100 * time.Millisecond)
	r.Gauge("spectator.v2.queue", nil).Set(13)
	r.MaxGauge("spectator.v2.inflight", nil).Set(4)
	r.DistributionSummary("spectator.v2.size", nil).Record(2048)
	r.AgeGauge("spectator.v2.age", nil).Now()
	r.MonotonicCounter("spectator.v2.mono", nil).Set(100)
	r.Close()
	fmt.Println("counter 5 timer 0.5 ptimer 0.1 gauge 13 max 4 summary 2048")
}
`

func TestCompatSpectator(t *testing.T) {
	compatEnabled(t)
	t.Parallel()
	dir := compatBinDir(t)
	v0 := goProgram(t, dir, "spectatorv0", spectatorV0Src, spectatorV0)
	v2 := goProgram(t, dir, "spectatorv2", spectatorV2Src, spectatorV2)
	srv := startCompatServer(t)

	out := runClient(t, time.Minute, v0, "http://"+srv.http+"/api/v1/publish")
	var sent, dropped float64
	if _, err := fmt.Sscanf(strings.TrimSpace(out[strings.LastIndex(out, "sent "):]), "sent %g dropped %g", &sent, &dropped); err != nil ||
		strings.Contains(out, "ERROR") || sent == 0 || dropped != 0 {
		t.Errorf("spectator-go v0.1.6 reports sent %v, dropped %v:\n%s", sent, dropped, out)
	}
	if got := stored(t, srv.http, "name,spectator.v0.requests,:eq,status,200,:eq,:and,statistic,count,:eq,:and"); got != 7 {
		t.Errorf("spectator-go v0 counter: stored %v, it reports 7", got)
	}
	if got := stored(t, srv.http, "name,spectator.v0.latency,:eq,statistic,count,:eq,:and"); got != 1 {
		t.Errorf("spectator-go v0 timer count: stored %v, it reports 1", got)
	}

	out = runClient(t, time.Minute, v2, srv.spectatord)
	t.Logf("spectator-go v2: %s", out)
	checks := []struct {
		q    string
		want float64
	}{
		{"name,spectator.v2.requests,:eq,status,200,:eq,:and,statistic,count,:eq,:and", 5},
		{"name,spectator.v2.latency,:eq,statistic,totalTime,:eq,:and", 0.5},
		{"name,spectator.v2.size,:eq,statistic,totalAmount,:eq,:and", 2048},
		{"name,spectator.v2.ptimer,:eq,statistic,count,:eq,:and", 1},
	}
	for _, c := range checks {
		eventually(t, c.q, func() bool { return math.Abs(stored(t, srv.http, c.q)-c.want) < 1e-9 })
	}
	for _, c := range []struct {
		q    string
		want float64
	}{{"name,spectator.v2.queue,:eq", 13}, {"name,spectator.v2.inflight,:eq", 4}} {
		eventually(t, c.q, func() bool {
			for _, x := range first(graph(t, srv.http, c.q, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))) {
				if x == c.want {
					return true
				}
			}
			return false
		})
	}
}

// zipkinSrc reports spans with zipkin-go's HTTP reporter and prints the
// trace id.
const zipkinSrc = `package main

import (
	"fmt"
	"os"

	"github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/model"
	reporterhttp "github.com/openzipkin/zipkin-go/reporter/http"
)

func main() {
	rep := reporterhttp.NewReporter(os.Args[1])
	ep, _ := zipkin.NewEndpoint("zipkin-compat", "127.0.0.1:8080")
	tr, err := zipkin.NewTracer(rep, zipkin.WithLocalEndpoint(ep), zipkin.WithSharedSpans(false))
	if err != nil {
		panic(err)
	}
	root := tr.StartSpan("GET /checkout", zipkin.Kind(model.Server))
	root.Tag("http.method", "GET")
	child := tr.StartSpan("charge card", zipkin.Kind(model.Client), zipkin.Parent(root.Context()))
	child.Finish()
	root.Finish()
	if err := rep.Close(); err != nil {
		panic(err)
	}
	fmt.Println(root.Context().TraceID.String(), 2)
}
`

func TestCompatZipkin(t *testing.T) {
	compatEnabled(t)
	t.Parallel()
	bin := goProgram(t, compatBinDir(t), "zipkinclient", zipkinSrc, zipkinGo)
	srv := startCompatServer(t)
	out := strings.Fields(runClient(t, time.Minute, bin, "http://"+srv.zipkin+"/api/v2/spans"))
	if len(out) != 2 {
		t.Fatalf("zipkin client printed %q", out)
	}
	want, _ := strconv.Atoi(out[1])
	var res struct {
		Data []struct {
			Spans []struct{ OperationName string }
		}
	}
	eventually(t, "zipkin trace", func() bool {
		code, body := get(t, "http://"+srv.http+"/api/traces/"+out[0])
		return code == 200 && json.Unmarshal([]byte(body), &res) == nil && len(res.Data) == 1 && len(res.Data[0].Spans) == want
	})
}

// otlpRecorder forwards OTLP/HTTP metrics to Sextant and adds up, per
// metric, the count of histogram datapoints as the temporality defines it:
// delta counts add up; a cumulative count is the increase since the
// previous one under the same start, or its whole value when it is the
// first or dropped (a reset).
type otlpRecorder struct {
	addr string
	mu   sync.Mutex
	sum  map[string]float64
	prev map[string]uint64
}

func newOTLPRecorder(t *testing.T, target string) *otlpRecorder {
	t.Helper()
	r := &otlpRecorder{sum: map[string]float64{}, prev: map[string]uint64{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ex := pmetricotlp.NewExportRequest()
		if err := ex.UnmarshalProto(body); err == nil {
			r.record(ex.Metrics())
		}
		fwd, _ := http.NewRequest(http.MethodPost, "http://"+target+req.URL.Path, bytes.NewReader(body))
		fwd.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(fwd)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	r.addr = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *otlpRecorder) record(md pmetric.Metrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	add := func(name string, delta bool, n uint64) {
		switch p, ok := r.prev[name]; {
		case delta:
			r.sum[name] += float64(n)
		case !ok || n < p:
			r.sum[name] += float64(n)
		default:
			r.sum[name] += float64(n - p)
		}
		r.prev[name] = n
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeExponentialHistogram:
					h := m.ExponentialHistogram()
					for _, dp := range h.DataPoints().All() {
						add(m.Name(), h.AggregationTemporality() == pmetric.AggregationTemporalityDelta, dp.Count())
					}
				case pmetric.MetricTypeHistogram:
					h := m.Histogram()
					for _, dp := range h.DataPoints().All() {
						add(m.Name(), h.AggregationTemporality() == pmetric.AggregationTemporalityDelta, dp.Count())
					}
				}
			}
		}
	}
}

// count is the count recorded for a metric.
func (r *otlpRecorder) count(name string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sum[name]
}
