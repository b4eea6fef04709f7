package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	minute = int64(60_000)
	hour   = 60 * minute
	now    = int64(1_700_006_400_000) // the store's and the handler's clock
)

type env struct {
	t       *testing.T
	store   *db.DB
	reg     *lib.Registry
	url     string
	handler *Handler
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	clock := func() int64 { return now }
	store, err := db.Open("", db.Options{Now: clock, MaintenanceInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := lib.NewRegistry(lib.RegistryOptions{})
	opts := Options{Appender: store, Now: clock, Registry: reg}
	if mod != nil {
		mod(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, store: store, reg: reg, url: srv.URL, handler: h}
}

// post sends body and returns the status and the decoded JSON reply.
func (e *env) post(path string, body []byte, header ...string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			out = map[string]any{"raw": string(b)}
		}
	}
	return resp.StatusCode, resp.Header, out
}

// value reads one step of the series with tags kv.
func (e *env) value(t int64, kv ...string) float64 {
	e.t.Helper()
	q := tags.True()
	for i := 0; i+1 < len(kv); i += 2 {
		q = tags.And(q, tags.Eq(kv[i], kv[i+1]))
	}
	set, err := e.store.Fetch(context.Background(), tsdb.FetchRequest{Query: q, Start: t, End: t + minute, Step: minute, Aggregation: tsdb.AggSum})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(set.Series) == 0 {
		return -1
	}
	return set.Series[0].Values[0]
}

func payload(common string, metrics ...string) []byte {
	return []byte(`{"tags":{` + common + `},"metrics":[` + strings.Join(metrics, ",") + `]}`)
}

func metricJSON(tagsJSON string, t int64, v string) string {
	return fmt.Sprintf(`{"tags":{%s},"timestamp":%d,"value":%s}`, tagsJSON, t, v)
}

func TestPublishStatuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	good := metricJSON(`"name":"requests","atlas.dstype":"gauge"`, now, "42")
	bad := metricJSON(`"name":"requests","bad key":"x"`, now, "1")
	badMsg := `invalid characters in key: [bad key] ([-._A-Za-z0-9^~] are allowed) (tags={bad key=x, name=requests, nf.app=www})`

	code, _, body := e.post("/api/v1/publish", payload(`"nf.app":"www"`, good))
	if code != 200 || body != nil {
		t.Errorf("all accepted: %d %v", code, body)
	}
	if v := e.value(now, "name", "requests", "nf.app", "www"); v != 42 {
		t.Errorf("stored value = %v, want 42", v)
	}
	code, _, body = e.post("/api/v1/publish", payload(`"nf.app":"www"`, good, bad))
	want := map[string]any{"type": "partial", "errorCount": 1.0, "message": []any{badMsg}}
	if diff := cmp.Diff(want, body); code != 202 || diff != "" {
		t.Errorf("partial: %d (-want +got):\n%s", code, diff)
	}
	code, _, body = e.post("/api/v1/publish-fast", payload(`"nf.app":"www"`, bad, bad))
	want = map[string]any{"type": "error", "errorCount": 2.0, "message": []any{badMsg, badMsg}}
	if diff := cmp.Diff(want, body); code != 400 || diff != "" {
		t.Errorf("all rejected: %d (-want +got):\n%s", code, diff)
	}
	code, _, body = e.post("/api/v1/publish", payload(``))
	want = map[string]any{"type": "error", "errorCount": 0.0, "message": []any{"empty payload"}}
	if diff := cmp.Diff(want, body); code != 400 || diff != "" {
		t.Errorf("empty: %d (-want +got):\n%s", code, diff)
	}
	code, _, body = e.post("/api/v1/publish", []byte(`{"metrics":[{"tags":{"name":"a"},`))
	if code != 400 || body["type"] != "error" || !strings.Contains(fmt.Sprint(body["message"]), "invalid JSON at offset") {
		t.Errorf("malformed: %d %v", code, body)
	}
	// Messages name the first five only; the count covers all.
	var many []string
	for range 7 {
		many = append(many, bad)
	}
	code, _, body = e.post("/api/v1/publish", payload(`"nf.app":"www"`, append(many, good)...))
	if code != 202 || body["errorCount"] != 7.0 || len(body["message"].([]any)) != 5 {
		t.Errorf("seven rejections: %d %v", code, body)
	}
}

func TestPublishRulesAndAges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		metric, msg string
	}{
		{metricJSON(`"name":"c"`, now, "1"), "value too short: name = [c] (1 < 2) (tags={name=c})"},
		{metricJSON(`"app":"x"`, now, "1"), "missing key 'name' (tags={app=x})"},
		{metricJSON(`"name":"cpu","x":"1"`, now, "1"), "key too short: [x] (1 < 2) (tags={name=cpu, x=1})"},
		{metricJSON(`"name":"cpu","nf.bogus":"1"`, now, "1"), "invalid key for reserved prefix 'nf.': nf.bogus (tags={name=cpu, nf.bogus=1})"},
		{`{"tags":{"name":"cpu"},"value":1}`, "missing timestamp (tags={name=cpu})"},
		{metricJSON(`"name":"cpu"`, now-2*hour, "1"), fmt.Sprintf("DataTooOld: timestamp %d is older than the ingest max age (tags={name=cpu})", now-2*hour)},
		{metricJSON(`"name":"cpu"`, now+hour, "1"), fmt.Sprintf("DataFromFuture: timestamp %d is more than 5m ahead (tags={name=cpu})", now+hour)},
	} {
		code, _, body := e.post("/api/v1/publish", payload(``, tc.metric))
		want := map[string]any{"type": "error", "errorCount": 1.0, "message": []any{tc.msg}}
		if diff := cmp.Diff(want, body); code != 400 || diff != "" {
			t.Errorf("%s: %d (-want +got):\n%s", tc.metric, code, diff)
		}
	}
	// Rejections are counted by protocol and reason.
	if c := e.reg.Counter("sextant.ingest.rejected", "protocol", "atlas", "reason", "DataTooOld").Count(); c != 1 {
		t.Errorf("DataTooOld counter = %v, want 1", c)
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestPublishEncodingsAndLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) {
		o.MaxBodyBytes = 4096
		o.MaxDecodedBytes = 8192
		o.MaxDatapoints = 10
	})
	good := payload(``, metricJSON(`"name":"zipped","atlas.dstype":"gauge"`, now, "7"))
	code, _, body := e.post("/api/v1/publish", gz(good), "Content-Encoding", "gzip")
	if code != 200 {
		t.Errorf("gzip: %d %v", code, body)
	}
	if v := e.value(now, "name", "zipped"); v != 7 {
		t.Errorf("gzipped value = %v", v)
	}
	big := bytes.Repeat([]byte(" "), 5000)
	code, _, body = e.post("/api/v1/publish", big)
	if code != 413 || !strings.Contains(fmt.Sprint(body["message"]), "exceeds 4096") {
		t.Errorf("over the body limit: %d %v", code, body)
	}
	// A small gzip body that inflates beyond the decoded limit.
	bomb := gz(append(append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 100_000)...), `"}`...))
	code, _, body = e.post("/api/v1/publish", bomb, "Content-Encoding", "gzip")
	if code != 413 || !strings.Contains(fmt.Sprint(body["message"]), "decompressed body exceeds 8192") {
		t.Errorf("gzip bomb: %d %v", code, body)
	}
	var ms []string
	for i := range 11 {
		ms = append(ms, metricJSON(fmt.Sprintf(`"name":"m%d"`, i), now, "1"))
	}
	code, _, body = e.post("/api/v1/publish", payload(``, ms...))
	if code != 413 || !strings.Contains(fmt.Sprint(body["message"]), "more than 10 datapoints") {
		t.Errorf("over the datapoint limit: %d %v", code, body)
	}
	code, _, body = e.post("/api/v1/publish", good, "Content-Encoding", "br")
	if code != 415 {
		t.Errorf("brotli: %d %v", code, body)
	}
	code, _, body = e.post("/api/v1/publish", []byte("\x1f\x8bnot gzip"), "Content-Encoding", "gzip")
	if code != 400 || !strings.Contains(fmt.Sprint(body["message"]), "invalid gzip") {
		t.Errorf("broken gzip: %d %v", code, body)
	}
}

func TestPublishCardinalityLimit(t *testing.T) {
	t.Parallel()
	clock := func() int64 { return now }
	store, err := db.Open("", db.Options{Now: clock, MaxSeriesPerName: 2, MaintenanceInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h, _ := New(Options{Appender: store, Now: clock})
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	e := &env{t: t, store: store, url: srv.URL}
	var ms []string
	for i := range 3 {
		ms = append(ms, metricJSON(fmt.Sprintf(`"name":"mm","idx":"%d"`, i), now, "1"))
	}
	code, _, body := e.post("/api/v1/publish", payload(``, ms...))
	if code != 202 || body["errorCount"] != 1.0 ||
		!strings.HasPrefix(body["message"].([]any)[0].(string), "NameSeriesLimitExceeded") {
		t.Errorf("third series of a name: %d %v", code, body)
	}
}
