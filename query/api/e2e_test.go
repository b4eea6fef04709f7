package api_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
)

// TestEndToEnd publishes through the Atlas publish API and reads the data
// back through the graph API in every format, over real HTTP.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	now := t0 + 2*3600_000
	store := querytest.Open(t, 60_000, now)
	ing, err := ingest.New(ingest.Options{Appender: store, Step: 60_000, Now: func() int64 { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Options{Querier: store, StorageStep: 60_000, Now: func() time.Time { return time.UnixMilli(now) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ing.Register(mux)
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{srv: srv}

	// Two hours of three apps x two nodes, plus a latency gauge.
	var metrics []map[string]any
	for i := 0; i < 120; i++ {
		ts := t0 + int64(i+1)*60_000
		for a, app := range []string{"api", "db", "www"} {
			for n := 0; n < 2; n++ {
				v := float64(100*(a+1)) + 40*math.Sin(float64(i)/12+float64(n))
				metrics = append(metrics, map[string]any{"tags": map[string]string{"name": "requests", "nf.app": app,
					"nf.node": fmt.Sprintf("i-%d", n), "atlas.dstype": "gauge"}, "timestamp": ts, "value": v})
			}
		}
		metrics = append(metrics, map[string]any{"tags": map[string]string{"name": "latency", "atlas.dstype": "gauge"},
			"timestamp": ts, "value": 0.2 + 0.1*math.Cos(float64(i)/9)})
	}
	body, _ := json.Marshal(map[string]any{"tags": map[string]string{"nf.region": "us-east-1"}, "metrics": metrics})
	resp, err := http.Post(srv.URL+"/api/v1/publish", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}

	span := []string{"s", fmt.Sprint(t0), "e", fmt.Sprint(now), "tz", "UTC"}
	q := "name,requests,:eq,(,nf.app,),:by"
	// json: the sums of the published values.
	code, _, out := e.get(t, "/api/v1/graph", append(span, "q", q, "format", "json")...)
	var g struct {
		Start, Step int64
		Legend      []string
		Metrics     []map[string]string
		Values      [][]any
	}
	if err := json.Unmarshal(out, &g); code != 200 || err != nil {
		t.Fatalf("json: %d %v %s", code, err, out)
	}
	if g.Start != t0+60_000 || g.Step != 60_000 || len(g.Values) != 120 || strings.Join(g.Legend, ",") != "(nf.app=api),(nf.app=db),(nf.app=www)" {
		t.Fatalf("json shape: start %d step %d %d rows legend %v", g.Start, g.Step, len(g.Values), g.Legend)
	}
	if g.Metrics[2]["nf.app"] != "www" || g.Metrics[2]["name"] != "requests" {
		t.Errorf("metrics %v", g.Metrics)
	}
	for i, row := range g.Values {
		want := 600 + 40*math.Sin(float64(i)/12) + 40*math.Sin(float64(i)/12+1)
		if got, ok := row[2].(float64); !ok || math.Abs(got-want) > 1e-9 {
			t.Fatalf("row %d www = %v, want %v", i, row[2], want)
		}
	}
	for _, f := range []string{"std.json", "stats.json", "csv", "txt"} {
		code, h, out := e.get(t, "/api/v1/graph", append(span, "q", q, "format", f)...)
		if code != 200 || len(out) == 0 || h.Get("Content-Type") == "" {
			t.Errorf("%s: %d %q", f, code, out)
		}
	}
	// png and svg: images of the requested size.
	code, _, out = e.get(t, "/api/v1/graph", append(span, "q", q, "format", "png", "w", "640", "h", "240")...)
	img, err := png.Decode(bytes.NewReader(out))
	if code != 200 || err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 240 {
		t.Errorf("png: %d %v", code, err)
	}
	code, _, out = e.get(t, "/api/v1/graph", append(span, "q", q, "format", "svg", "w", "640", "h", "240")...)
	if w, h := svgSize(t, out); code != 200 || w != "640" || h != "240" {
		t.Errorf("svg: %d %sx%s", code, w, h)
	}

	// Golden charts: what a reviewer can open and look at.
	charts := []struct{ name, q string }{
		{"lines", q + "&title=requests by app"},
		{"stack-two-axes", q + ",:stack,name,latency,:eq,:max,1,:axis,ff8800,:color,latency,:legend&ylabel.1=seconds&ylabel=requests/s"},
		{"heatmap-vspan", "name,requests,:eq,(,nf.node,nf.app,),:by,:heatmap,name,requests,:eq,:sum,1270,:gt,:vspan,40,:alpha,busy,:legend"},
	}
	for _, c := range charts {
		q, extra, _ := strings.Cut(c.q, "&")
		params := append(span, "q", q, "format", "svg")
		for _, kv := range strings.Split(extra, "&") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				params = append(params, k, v)
			}
		}
		code, _, out := e.get(t, "/api/v1/graph", params...)
		if code != 200 {
			t.Fatalf("%s: %d %s", c.name, code, out)
		}
		svgSize(t, out)
		golden(t, filepath.Join("testdata", c.name+".svg"), out)
		if dir := os.Getenv("CHART_OUT"); dir != "" {
			// The PNG of the same chart, to look at while reviewing.
			for i := 0; i+1 < len(params); i += 2 {
				if params[i] == "format" {
					params[i+1] = "png"
				}
			}
			_, _, img := e.get(t, "/api/v1/graph", params...)
			if err := os.WriteFile(filepath.Join(dir, c.name+".png"), img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func svgSize(t *testing.T, b []byte) (string, string) {
	t.Helper()
	var doc struct {
		XMLName xml.Name
		Width   string `xml:"width,attr"`
		Height  string `xml:"height,attr"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Fatalf("not an svg document: %v", err)
	}
	return doc.Width, doc.Height
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./query/api -run TestEndToEnd -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update and review the diff)", path)
	}
}
