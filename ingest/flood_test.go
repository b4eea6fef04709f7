package ingest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestFlood sends far more than the server admits at once: it must shed
// the excess with 429 or 503 and Retry-After, store every datapoint it
// acknowledged, and keep answering queries throughout.
func TestFlood(t *testing.T) {
	t.Parallel()
	clock := func() int64 { return now }
	// A durable store with a tiny log backlog: while one fsync runs, the
	// next writers find the backlog full and are shed.
	store, err := db.Open(t.TempDir(), db.Options{Now: clock, MaxLogBacklog: 64 << 10, MaintenanceInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h, _ := New(Options{Appender: store, Now: clock, MaxInFlight: 4})
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var ok, shed, other atomic.Int64
	var acked sync.Map // series name → last acknowledged value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			client := &http.Client{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var ms []string
				for j := range 500 {
					ms = append(ms, metricJSON(fmt.Sprintf(`"name":"flood","sender":"s%d","idx":"j%d","atlas.dstype":"gauge"`, g, j), now, fmt.Sprint(i)))
				}
				resp, err := client.Post(srv.URL+"/api/v1/publish", "application/json", strings.NewReader(string(payload(``, ms...))))
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
					acked.Store(g, i)
				case 429, 503:
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("%d without Retry-After", resp.StatusCode)
					}
					shed.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	// Queries keep working during the flood.
	queries := 0
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := store.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "flood"),
			Start: now, End: now + minute, Step: minute, Aggregation: tsdb.AggCount}); err != nil {
			t.Errorf("query during the flood: %v", err)
		}
		resp, err := http.Get(srv.URL + "/api/v1/publish") // the mux answers, even if not a POST
		if err != nil {
			t.Errorf("server unreachable during the flood: %v", err)
		} else {
			resp.Body.Close()
		}
		queries++
	}
	close(stop)
	wg.Wait()
	t.Logf("accepted %d, shed %d, other %d, queries %d", ok.Load(), shed.Load(), other.Load(), queries)
	if shed.Load() == 0 || ok.Load() == 0 {
		t.Errorf("accepted %d and shed %d requests; want both", ok.Load(), shed.Load())
	}
	if other.Load() != 0 {
		t.Errorf("%d requests failed otherwise", other.Load())
	}
	// Every acknowledged batch is stored: gauges keep the max, so each
	// sender's series hold at least its last acknowledged value.
	acked.Range(func(k, v any) bool {
		set, err := store.Fetch(context.Background(), tsdb.FetchRequest{
			Query: tags.And(tags.Eq("name", "flood"), tags.Eq("sender", fmt.Sprint("s", k))),
			Start: now, End: now + minute, Step: minute, Aggregation: tsdb.AggMin})
		if err != nil || len(set.Series) == 0 || set.Series[0].Values[0] < float64(v.(int)) {
			t.Errorf("sender %v: stored %v, acknowledged %v (%v)", k, set, v, err)
		}
		return true
	})
}

func TestShedMemory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MemoryLimit = 1 })
	code, hdr, body := e.post("/api/v1/publish", payload(``, metricJSON(`"name":"m1"`, now, "1")))
	if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(fmt.Sprint(body["message"]), "memory") {
		t.Errorf("over the memory limit: %d %v %v", code, hdr, body)
	}
}
