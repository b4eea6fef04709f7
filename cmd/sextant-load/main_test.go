package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const start = int64(1_700_006_400_000)

// storeNow is the clock of the test stores: 30 minutes after start, so that
// the workloads' samples are all in the past and none too old.
const storeNow = start + 30*60_000

func fixedNow() time.Time { return time.UnixMilli(start + 24*3600_000) }

// ingestServer is the real ingest handler on a real in-memory store whose
// clock stands at storeNow; both close when the test ends.
func ingestServer(t *testing.T) (*db.DB, *httptest.Server) {
	t.Helper()
	clock := func() int64 { return storeNow }
	store, err := db.Open("", db.Options{Now: clock, MaintenanceInterval: 1 << 40, IngestMaxAge: 2 * 3600_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h, err := ingest.New(ingest.Options{Appender: store, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return store, srv
}

// TestSend sends a small sparse workload to the real publish handler on a
// real store and reads it back. One sender keeps the steps in order: with
// several, a counter's next step can overtake its previous one and the
// store then has no rate for it at that step.
func TestSend(t *testing.T) {
	t.Parallel()
	store, srv := ingestServer(t)

	var stdout, stderr bytes.Buffer
	args := []string{"send", "-url", srv.URL + "/api/v1/publish", "-series", "500", "-samples", "30",
		"-start-ms", "1700006400000", "-sparse", "5", "-batch", "300", "-c", "1", "-gzip", "-pid", "1"}
	if code := run(context.Background(), args, &stdout, &stderr, time.Now); code != 0 {
		t.Fatalf("send exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "RESULT send: ") || !strings.Contains(out, " errors=0 ") {
		t.Errorf("send printed %q", out)
	}
	// 400 dense series × 30 samples, plus the sparse ones' bursts.
	set, err := store.Fetch(context.Background(), tsdb.FetchRequest{
		Query: tags.True(), Aggregation: tsdb.AggCount, Start: start, End: storeNow, Step: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Series) != 1 {
		t.Fatalf("count: %d series", len(set.Series))
	}
	// Counters need two samples for a rate, so count from the second step.
	for i, v := range set.Series[0].Values[1:] {
		if v < 400 || v >= 500 {
			t.Errorf("step %d: %v series reported, want 400 dense plus some of 100 sparse", i+1, v)
		}
	}
}

// TestSendErrors counts non-2xx answers and exits 1.
func TestSendErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no room", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	args := []string{"send", "-url", srv.URL, "-series", "10", "-samples", "3", "-batch", "10"}
	if code := run(context.Background(), args, &stdout, &stderr, fixedNow); code != 1 {
		t.Fatalf("send exited %d, want 1: %s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), " errors=3 ") || !strings.Contains(stderr.String(), "status 503: no room") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestGen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	atlas, jsonl := filepath.Join(dir, "a.json"), filepath.Join(dir, "s.jsonl")
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{
		{"gen", "-series", "120", "-samples", "4", "-batch", "50", "-o", atlas},
		{"gen", "-format", "jsonl", "-series", "120", "-samples", "4", "-sparse", "3", "-o", jsonl},
	} {
		if code := run(context.Background(), args, &stdout, &stderr, fixedNow); code != 0 {
			t.Fatalf("%v exited %d: %s", args, code, stderr.String())
		}
	}
	// Atlas: 4 samples × ceil(120/50) bodies, each a publish body,
	// time-major, ending before now on an hour boundary.
	lines := readLines(t, atlas)
	if len(lines) != 12 {
		t.Fatalf("%d atlas bodies, want 12", len(lines))
	}
	var first, last int64
	for i, l := range lines {
		var body struct {
			Metrics []struct {
				Tags      map[string]string `json:"tags"`
				Timestamp int64             `json:"timestamp"`
			} `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(l), &body); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		if want := []int{50, 50, 20}[i%3]; len(body.Metrics) != want {
			t.Errorf("body %d: %d datapoints, want %d", i, len(body.Metrics), want)
		}
		if i == 0 {
			first = body.Metrics[0].Timestamp
		}
		last = body.Metrics[0].Timestamp
	}
	if first%3600_000 != 0 || last >= fixedNow().UnixMilli() || last != first+3*60_000 {
		t.Errorf("timestamps %d .. %d, want hour-aligned and before %d", first, last, fixedNow().UnixMilli())
	}
	// jsonl: one series a line; sparse ones leave samples out.
	lines = readLines(t, jsonl)
	if len(lines) != 120 {
		t.Fatalf("%d series lines, want 120", len(lines))
	}
	short := 0
	for i, l := range lines {
		var s struct {
			Tags       map[string]string `json:"tags"`
			Timestamps []int64           `json:"timestamps"`
			Values     []float64         `json:"values"`
		}
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if len(s.Timestamps) != len(s.Values) || s.Tags["name"] == "" {
			t.Fatalf("line %d: %s", i, l)
		}
		for _, v := range s.Values {
			if math.IsNaN(v) {
				t.Fatalf("line %d has NaN", i)
			}
		}
		if len(s.Values) < 4 {
			short++
			if i%3 != 2 {
				t.Errorf("line %d is not one of the sparse series but misses samples", i)
			}
		}
	}
	if short == 0 {
		t.Error("no sparse series missed a sample")
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		nil,
		{"fly"},
		{"gen", "-format", "xml"},
		{"gen", "-series", "0"},
		{"send", "-c", "0"},
		{"gen", "-nope"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr, fixedNow); code != 2 {
			t.Errorf("%v exited %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

func readLines(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
