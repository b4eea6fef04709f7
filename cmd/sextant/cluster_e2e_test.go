package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// clusterFlags are the flags of a node of a test cluster on brokers.
func clusterFlags(brokers, role, dir string) []string {
	return []string{"--data-dir", dir, "--memory-retention", "1h", "--kafka-brokers", brokers,
		"--role", role, "--kafka-topic-prefix", "e2e", "--kafka-partitions", "8", "--node-id", role}
}

// stop ends a binary gracefully.
func (b *binary) stop(t *testing.T) {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}

// TestClusterEndToEnd runs an ingest node and a store node of the real
// binary on a kfake cluster of three brokers, and a single node beside
// them: what is published to the ingest node (Atlas publish, OTLP metrics
// and traces) is answered by the store node exactly as by the single node
// fed the same requests. Then the store node is killed with SIGKILL while
// the ingest node keeps acknowledging writes: after its restart, every
// acknowledged datapoint is there.
func TestClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := strings.Join(kc.ListenAddrs(), ",")
	bin := buildBinary(t)
	storeDir := t.TempDir()
	ingestNode := runBinary(t, bin, nil, clusterFlags(brokers, "ingest", t.TempDir())...)
	defer ingestNode.stop(t)
	storeNode := runBinary(t, bin, nil, clusterFlags(brokers, "store", storeDir)...)
	single := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "1h")
	defer single.stop(t)

	// The same requests to the ingest node and to the single node.
	base := time.Now().Truncate(time.Second).Add(-2 * time.Minute).UnixMilli()
	for i := range 30 {
		body := publishBody(base+int64(i)*1000, i)
		md := otlpGauge(base+int64(i)*1000, i)
		for _, b := range []*binary{ingestNode, single} {
			if code, resp := post(t, "http://"+b.addr+"/api/v1/publish", body, "Content-Type", "application/json"); code != 200 {
				t.Fatalf("publish to %s: %d %s", b.addr, code, resp)
			}
			if code, resp := postOTLP(t, b.addr, md); code != 200 {
				t.Fatalf("OTLP metrics to %s: %d %s", b.addr, code, resp)
			}
		}
	}
	var traces []pcommon.TraceID
	for n := range 20 {
		body, tid := crashTraceRequest(n)
		traces = append(traces, tid)
		for _, b := range []*binary{ingestNode, single} {
			if code, resp := post(t, "http://"+b.addr+"/v1/traces", body, "Content-Type", "application/x-protobuf"); code != 200 {
				t.Fatalf("traces to %s: %d %s", b.addr, code, resp)
			}
		}
	}

	graph := func(b *binary, q string) string {
		v := url.Values{"q": {q}, "s": {fmt.Sprint(base - 10_000)}, "e": {fmt.Sprint(base + 40_000)},
			"step": {"1s"}, "format": {"json"}}
		_, body := get(t, "http://"+b.addr+"/api/v1/graph?"+v.Encode())
		return body
	}
	queries := []string{
		`name,e2e\.,:re`,
		`name,e2e\.,:re,:sum,(,name,),:by`,
		`name,e2e.rate,:eq,:max`,
		`name,e2e.otlp,:eq,(,node,),:by`,
	}
	for _, q := range queries {
		want := graph(single, q)
		if !strings.Contains(want, `"values"`) || strings.Count(want, "NaN") > 30*60 {
			t.Fatalf("single node answers %q with %.300s", q, want)
		}
		var got string
		deadline := time.Now().Add(60 * time.Second)
		for got = graph(storeNode, q); !sameGraph(got, want) && time.Now().Before(deadline); got = graph(storeNode, q) {
			time.Sleep(50 * time.Millisecond) // the store node catching up
		}
		if !sameGraph(got, want) {
			t.Fatalf("the store node answers %q with\n%s\nthe single node with\n%s", q, got, want)
		}
	}
	for _, tid := range traces {
		path := "/api/traces/" + fmt.Sprintf("%x", tid[:])
		_, want := get(t, "http://"+single.addr+path)
		waitFor(t, 30*time.Second, "trace "+path+" on the store node", func() bool {
			code, got := get(t, "http://"+storeNode.addr+path)
			return code == 200 && spanIDs(got) == spanIDs(want) && spanIDs(want) == 3
		})
	}

	// Kill -9 the store node under ingest; what the ingest node
	// acknowledged meanwhile is all there after the store node restarts.
	var (
		mu    sync.Mutex
		acked []int
	)
	var sent atomic.Int64
	stopSending := make(chan struct{})
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		client := &http.Client{Timeout: 10 * time.Second}
		for n := 0; n < 900; n++ {
			select {
			case <-stopSending:
				return
			default:
			}
			body := fmt.Appendf(nil, `{"metrics":[{"tags":{"name":"e2e.kill","seq":"%05d","atlas.dstype":"gauge"},"timestamp":%d,"value":%d}]}`,
				n, time.Now().UnixMilli(), n)
			resp, err := client.Post("http://"+ingestNode.addr+"/api/v1/publish", "application/json", bytes.NewReader(body))
			if err != nil {
				continue
			}
			if resp.StatusCode != 200 && n < 3 {
				msg, _ := io.ReadAll(resp.Body)
				t.Logf("write %d: %d %s", n, resp.StatusCode, msg)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				mu.Lock()
				acked = append(acked, n)
				mu.Unlock()
			}
			sent.Add(1)
		}
	}()
	waitFor(t, 60*time.Second, "100 writes", func() bool { return sent.Load() >= 100 })
	storeNode.cmd.Process.Signal(syscall.SIGKILL)
	storeNode.cmd.Wait()
	waitFor(t, 60*time.Second, "100 more writes with the store node down", func() bool { return sent.Load() >= 200 })
	storeNode = runBinary(t, bin, nil, clusterFlags(brokers, "store", storeDir)...)
	defer storeNode.stop(t)
	waitFor(t, 60*time.Second, "100 more writes after the restart", func() bool { return sent.Load() >= 300 })
	close(stopSending)
	<-sending

	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 250 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	var missing []int
	waitFor(t, 60*time.Second, "every acknowledged write on the store node", func() bool {
		_, body := get(t, "http://"+storeNode.addr+"/api/v1/tags/seq?q=name,e2e.kill,:eq")
		var have []string
		if err := json.Unmarshal([]byte(body), &have); err != nil {
			return false
		}
		set := map[string]bool{}
		for _, h := range have {
			set[h] = true
		}
		missing = missing[:0]
		for _, n := range acked {
			if !set[fmt.Sprintf("%05d", n)] {
				missing = append(missing, n)
			}
		}
		return len(missing) == 0
	})
	t.Logf("%d writes acknowledged around the kill, all on the restarted store node", len(acked))
}

// sameGraph reports whether two graph API JSON answers are the same: the
// same lines, and values equal up to the last bits of a float (an
// aggregate adds its series in the order the store holds them, which the
// log's partitions change).
func sameGraph(a, b string) bool {
	type graph struct {
		Legend  []string
		Metrics []map[string]string
		Values  [][]any
	}
	var ga, gb graph
	if json.Unmarshal([]byte(a), &ga) != nil || json.Unmarshal([]byte(b), &gb) != nil {
		return false
	}
	if fmt.Sprint(ga.Legend, ga.Metrics) != fmt.Sprint(gb.Legend, gb.Metrics) || len(ga.Values) != len(gb.Values) {
		return false
	}
	for i, row := range ga.Values {
		if len(row) != len(gb.Values[i]) {
			return false
		}
		for j, va := range row {
			x, okx := va.(float64)
			y, oky := gb.Values[i][j].(float64)
			switch {
			case okx != oky:
				return false
			case !okx:
				if va != gb.Values[i][j] { // "NaN"
					return false
				}
			case math.Abs(x-y) > 1e-9*math.Max(math.Abs(x), math.Abs(y)):
				return false
			}
		}
	}
	return true
}

// spanIDs counts the spans of a Jaeger API answer.
func spanIDs(body string) int { return strings.Count(body, `"spanID"`) }

// publishBody is step i of a publish request: 10 series of each data
// source type.
func publishBody(t int64, i int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"tags":{"app":"e2e"},"metrics":[`)
	for j, ds := range []string{"gauge", "rate", "counter", "sum"} {
		for k := range 10 {
			if j+k > 0 {
				b.WriteByte(',')
			}
			v := float64(i*(k+1)) + 0.25*float64(j)
			fmt.Fprintf(&b, `{"tags":{"name":"e2e.%s","atlas.dstype":"%s","node":"i-%02d"},"timestamp":%d,"value":%g}`,
				ds, ds, k, t-int64(k*37), v)
		}
	}
	b.WriteString("]}")
	return b.Bytes()
}

// otlpGauge is step i of an OTLP gauge of 5 series.
func otlpGauge(t int64, i int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "e2e")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("e2e.otlp")
	g := m.SetEmptyGauge()
	for k := range 5 {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(t * 1e6))
		dp.SetDoubleValue(float64(i + k))
		dp.Attributes().PutStr("node", fmt.Sprintf("n%d", k))
	}
	return md
}
