package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.Sextant != "http://localhost:7101" || c.OTLP != "http://localhost:4318" || c.Port != 8080 ||
		c.Step != time.Minute || c.RPS != 10 || c.Fault != "none" {
		t.Errorf("defaults %+v, %v", c, err)
	}
	for _, args := range [][]string{
		{"--fault", "meteor"}, {"--step", "500ms"}, {"--rps", "-1"}, {"--port", "70000"}, {"extra"}, {"--nope"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if code := run([]string{"--fault", "meteor"}, io.Discard); code != 2 {
		t.Errorf("bad flag exit %d, want 2", code)
	}
}

func TestFaultSwitch(t *testing.T) {
	var s faultSwitch
	srv := httptest.NewServer(&s)
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/", "", 200, "none"},
		{"POST", "/", "playback-errors\n", 200, "playback-errors"},
		{"GET", "/", "", 200, "playback-errors"},
		{"POST", "/?name=recs-down", "", 200, "recs-down"},
		{"POST", "/", "meteor", 400, `unknown fault "meteor"; want one of none, catalog-slow, playback-errors, recs-down`},
		{"DELETE", "/", "", 405, "method not allowed"},
		{"PUT", "/", "none", 200, "none"},
	} {
		code, body := do(tc.method, tc.path, tc.body)
		if code != tc.code || body != tc.want {
			t.Errorf("%s %s %q = %d %q, want %d %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}
}

// startServer builds and runs the real sextant binary with a 1 s step and
// returns its HTTP address.
func startServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sextant")
	if out, err := exec.Command("go", "build", "-o", bin, "../sextant").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--otlp-http-listen", "", "--otlp-grpc-listen", "", "--zipkin-listen", "", "--spectatord-listen", "",
		"--step", "1s", "--memory-retention", "1h", "--data-dir", t.TempDir())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg="sextant ready" listen=(\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	select {
	case addr := <-addrc:
		return addr
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not get ready within 60 s")
		return ""
	}
}

type line struct {
	tags   map[string]string
	values []float64
}

func graph(t *testing.T, addr, q string) []line {
	t.Helper()
	v := url.Values{"q": {q}, "s": {"e-2m"}, "step": {"1s"}, "format": {"json"}}
	resp, err := http.Get("http://" + addr + "/api/v1/graph?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g struct {
		Metrics []map[string]string
		Values  [][]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || resp.StatusCode != 200 {
		t.Fatalf("graph %s: %d %v", q, resp.StatusCode, err)
	}
	out := make([]line, len(g.Metrics))
	for i := range out {
		out[i].tags = g.Metrics[i]
		for _, row := range g.Values {
			if f, ok := row[i].(float64); ok {
				out[i].values = append(out[i].values, f)
			}
		}
	}
	return out
}

func total(l line) float64 {
	s := 0.0
	for _, v := range l.values {
		s += v
	}
	return s
}

// TestDemoAgainstServer runs the demo against a real server until every
// service has published calls, switches a fault on until it shows, and
// reads the services' metrics back through the graph API.
func TestDemoAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	addr := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := config{Sextant: "http://" + addr, OTLP: "http://" + addr, Host: "127.0.0.1", Port: 0, Step: time.Second, RPS: 60, Fault: "none"}
	go func() { done <- runDemo(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	frontend := <-ready
	// Healthy traffic first: every service has published calls.
	waitFor(t, 60*time.Second, "calls published by the four services", func() bool {
		n := 0
		for _, l := range graph(t, addr, "name,ipc.server.call,:eq,statistic,count,:eq,:and,(,nf.app,),:by") {
			if total(l) > 0 {
				n++
			}
		}
		return n == 4
	})
	resp, err := http.Post("http://"+frontend+"/fault", "text/plain", strings.NewReader("playback-errors"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("fault switch: %v %v", resp, err)
	}
	resp.Body.Close()
	// Then the fault, until it shows at both ends: failed playback starts
	// and 502s at the frontend. Each service publishes on its own step, so
	// one may show a step before the other.
	waitFor(t, 60*time.Second, "failed playback starts and 502s at the frontend after the fault", func() bool {
		l := graph(t, addr, "name,ipc.server.call,:eq,nf.app,frontend,:eq,:and,http.status,502,:eq,:and,statistic,count,:eq,:and,:sum")
		p := graph(t, addr, "name,playback.starts,:eq,result,failure,:eq,:and,:sum")
		return len(l) == 1 && total(l[0]) > 0 && len(p) == 1 && total(p[0]) > 0
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the demo did not stop within 15 s")
	}

	// Every service answered calls, seen from its own side.
	apps := map[string]float64{}
	for _, l := range graph(t, addr, "name,ipc.server.call,:eq,statistic,count,:eq,:and,(,nf.app,),:by") {
		apps[l.tags["nf.app"]] = total(l)
	}
	for _, app := range []string{"frontend", "catalog", "recommendations", "playback"} {
		if apps[app] <= 0 {
			t.Errorf("no ipc.server.call from %s: %v", app, apps)
		}
	}
	// The frontend's client calls, by endpoint.
	endpoints := map[string]bool{}
	for _, l := range graph(t, addr, "name,ipc.client.call,:eq,nf.app,frontend,:eq,:and,statistic,count,:eq,:and,(,ipc.endpoint,),:by") {
		endpoints[l.tags["ipc.endpoint"]] = total(l) > 0
	}
	for _, e := range []string{"recs.get", "catalog.title", "playback.start"} {
		if !endpoints[e] {
			t.Errorf("frontend made no %s calls: %v", e, endpoints)
		}
	}
	// The fault shows: failed playback starts, and 5xx at the frontend.
	if l := graph(t, addr, "name,playback.starts,:eq,result,failure,:eq,:and,:sum"); len(l) != 1 || total(l[0]) <= 0 {
		t.Errorf("no failed playback starts after the fault: %v", l)
	}
	if l := graph(t, addr, "name,ipc.server.call,:eq,nf.app,frontend,:eq,:and,http.status,502,:eq,:and,statistic,count,:eq,:and,:sum"); len(l) != 1 || total(l[0]) <= 0 {
		t.Errorf("no 502s at the frontend after the fault: %v", l)
	}
	// Traces: every service reported spans, and a frontend trace reaches
	// the services it called.
	resp, err = http.Get("http://" + addr + "/api/services")
	if err != nil {
		t.Fatal(err)
	}
	var services struct{ Data []string }
	json.NewDecoder(resp.Body).Decode(&services)
	resp.Body.Close()
	if strings.Join(services.Data, ",") != "catalog,frontend,playback,recommendations" {
		t.Errorf("services with traces: %v", services.Data)
	}
	// (A home page without a user is a 400 that calls nobody: only
	// successful ones must span services.)
	resp, err = http.Get("http://" + addr + "/api/traces?service=frontend&operation=" + url.QueryEscape("GET /api/home") +
		"&tags=" + url.QueryEscape(`{"http.response.status_code":"200"}`) + "&limit=5")
	if err != nil {
		t.Fatal(err)
	}
	var traces struct {
		Data []struct {
			Spans     []json.RawMessage
			Processes map[string]struct{ ServiceName string }
		}
	}
	json.NewDecoder(resp.Body).Decode(&traces)
	resp.Body.Close()
	if len(traces.Data) == 0 {
		t.Fatal("no frontend home-page traces")
	}
	for _, tr := range traces.Data {
		if len(tr.Processes) < 2 || len(tr.Spans) < 4 {
			t.Errorf("a home-page trace has %d spans in %d services; it should reach catalog and recommendations", len(tr.Spans), len(tr.Processes))
		}
	}
	// Latency percentiles work on the demo's percentile timers.
	if l := graph(t, addr, "name,ipc.server.call,:eq,nf.app,catalog,:eq,:and,(,99,),:percentiles"); len(l) != 1 || total(l[0]) <= 0 {
		t.Errorf("no catalog p99: %v", l)
	}
}
