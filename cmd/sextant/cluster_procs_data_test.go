package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The data of TestClusterProcesses and how its answers are compared: the
// writers, the reads, the checks, and the query loop.

// numberAfterValues finds a number in the values of a graph or
// Prometheus answer.
var numberAfterValues = regexp.MustCompile(`"values":\[.*[\[,"]-?[0-9]`)

// hasData says whether an answer holds data, so that two answers alike
// in being empty do not pass for the same data.
func hasData(path, body string) bool {
	switch {
	case strings.HasPrefix(path, "/api/v1/graph"), strings.HasPrefix(path, "/api/v1/query_range"):
		return numberAfterValues.MatchString(body)
	case strings.HasPrefix(path, "/api/v1/tags"):
		return len(body) > 10
	case strings.HasPrefix(path, "/api/traces"):
		return strings.Contains(body, `"spanID"`)
	}
	return false
}

// reply is one HTTP answer.
type reply struct {
	code    int
	partial string // X-Sextant-Partial
	body    string
}

func answer(t *testing.T, addr, path string) reply {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, addr, err)
	}
	return reply{code: resp.StatusCode, partial: resp.Header.Get("X-Sextant-Partial"), body: string(b)}
}

// same says whether two answers to path are the same: graphs up to the
// last bits of a float (sameGraph), trace searches as sets of traces with
// their spans, anything else byte for byte.
func same(path string, a, b reply) bool {
	if a.code != b.code || a.code != 200 {
		return false
	}
	switch {
	case strings.HasPrefix(path, "/api/v1/graph"):
		return sameGraph(a.body, b.body)
	case strings.HasPrefix(path, "/api/traces?"):
		return traceSet(a.body) == traceSet(b.body)
	}
	return a.body == b.body
}

// traceSet is a Jaeger search answer as its sorted trace ids, each with
// its sorted span ids.
func traceSet(body string) string {
	var doc struct {
		Data []struct {
			TraceID string
			Spans   []struct{ SpanID string }
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return "invalid: " + err.Error()
	}
	var out []string
	for _, tr := range doc.Data {
		var spans []string
		for _, s := range tr.Spans {
			spans = append(spans, s.SpanID)
		}
		sort.Strings(spans)
		out = append(out, tr.TraceID+":"+strings.Join(spans, ","))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// percentileBody is step i of a percentile timer e2e.lat: three buckets
// of counts per second, as Spectator's PercentileTimer publishes them.
func percentileBody(t int64, i int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"tags":{"app":"e2e"},"metrics":[`)
	for j, bucket := range []string{"T0020", "T0030", "T0040"} {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"tags":{"name":"e2e.lat","statistic":"percentile","percentile":%q,"atlas.dstype":"rate"},"timestamp":%d,"value":%d}`,
			bucket, t, (i%5+1)*(j+1))
	}
	b.WriteString("]}")
	return b.Bytes()
}

// seqWriter writes numbered datapoints and traces to the ingest node and,
// once the ingest node acknowledged them, the same to the single node.
// Write n is one datapoint of series name{shard=s<n%4>} at base+n seconds,
// value n+1 (a datapoint applied twice and added reads 2(n+1)), and one
// trace of three spans.
type seqWriter struct {
	name, dstype string
	base         int64
	traceBase    int // trace n is crashTraceRequest(traceBase+n)
	ingest       string
	single       string
	client       *http.Client

	written atomic.Int64 // writes done, acknowledged or not
	// from and to bound the start times of its traces, Unix µs.
	from int64
	to   atomic.Int64
	mu   struct {
		sync.Mutex
		acked  []int
		failed []string // writes the ingest node or the single node did not acknowledge
	}
	stop, done chan struct{}
	stopOnce   sync.Once
}

// maxWrites bounds a writer's writes: each is its own step of a graph.
const maxWrites = 600

func newSeqWriter(name, dstype string, traceBase int, ingest, single string) *seqWriter {
	return &seqWriter{name: name, dstype: dstype, traceBase: traceBase, ingest: ingest, single: single,
		from:   time.Now().UnixMicro() - 1,
		base:   time.Now().Truncate(time.Second).Add(-maxWrites * time.Second).UnixMilli(),
		client: &http.Client{Timeout: 20 * time.Second}, stop: make(chan struct{}), done: make(chan struct{})}
}

// writeEvery paces a writer: at most 25 writes a second, so that
// maxWrites last through a step of the test.
const writeEvery = 40 * time.Millisecond

// run writes until stopped (or maxWrites).
func (w *seqWriter) run() {
	defer close(w.done)
	defer func() { w.to.Store(time.Now().UnixMicro() + 1) }()
	pace := time.NewTicker(writeEvery)
	defer pace.Stop()
	for n := 0; n < maxWrites; n++ {
		select {
		case <-w.stop:
			return
		case <-pace.C:
		}
		body := fmt.Appendf(nil, `{"metrics":[{"tags":{"name":%q,"shard":"s%d","atlas.dstype":%q},"timestamp":%d,"value":%d}]}`,
			w.name, n%4, w.dstype, w.base+int64(n)*1000, n+1)
		spans, _ := crashTraceRequest(w.traceBase + n)
		err := w.send(w.ingest, body, spans)
		var serr error
		if err == nil {
			serr = w.send(w.single, body, spans)
		}
		w.mu.Lock()
		if err != nil {
			w.mu.failed = append(w.mu.failed, fmt.Sprintf("write %d to the ingest node: %v", n, err))
		} else {
			w.mu.acked = append(w.mu.acked, n)
		}
		if serr != nil {
			w.mu.failed = append(w.mu.failed, fmt.Sprintf("write %d to the single node: %v", n, serr))
		}
		w.mu.Unlock()
		w.written.Add(1)
	}
}

// send posts one write's datapoint and trace to addr; nil when both were
// acknowledged with a 2xx.
func (w *seqWriter) send(addr string, body, spans []byte) error {
	for _, r := range []struct {
		path, ctype string
		body        []byte
	}{
		{"/api/v1/publish", "application/json", body}, {"/v1/traces", "application/x-protobuf", spans}} {
		resp, err := w.client.Post("http://"+addr+r.path, r.ctype, bytes.NewReader(r.body))
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: %d %s", r.path, resp.StatusCode, msg)
		}
	}
	return nil
}

// waitWritten waits until n more writes were done than when it was called
// with before.
func (w *seqWriter) waitWritten(t *testing.T, before int64, n int64, what string) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d writes %s", n, what), func() bool { return w.written.Load() >= before+n })
}

// finish stops the writer and returns the acknowledged writes.
func (w *seqWriter) finish() (acked []int, failed []string) {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.mu.acked), slices.Clone(w.mu.failed)
}

func (w *seqWriter) graphPath() string {
	return "/api/v1/graph?" + url.Values{"q": {"name," + w.name + ",:eq,(,shard,),:by"}, "s": {fmt.Sprint(w.base - 1000)},
		"e": {fmt.Sprint(w.base + maxWrites*1000)}, "step": {"1s"}, "format": {"json"}}.Encode()
}

func (w *seqWriter) tracesPath() string { return searchPath("db", w.from, w.to.Load()) }

// searchPath is a Jaeger search for the traces of service that started
// in [from, to] (Unix µs).
func searchPath(service string, from, to int64) string {
	return "/api/traces?" + url.Values{"service": {service}, "start": {fmt.Sprint(from)}, "end": {fmt.Sprint(to)},
		"limit": {"1000"}}.Encode()
}

// checkSeries checks the graph of the writer's series on addr: write n,
// when acknowledged, reads exactly n+1 at its step in line s<n%4>; a step
// nothing was acknowledged for reads nothing (NaN) or, for a write the
// ingest node failed, its value. Only the lines in keep (by k) are
// checked (by shard), and each must be there; nil keeps all four.
func (w *seqWriter) checkSeries(t *testing.T, addr string, acked []int, keep map[string]bool) []string {
	t.Helper()
	r := answer(t, addr, w.graphPath())
	var g struct {
		Start, Step int64
		Metrics     []map[string]string
		Values      [][]any
	}
	if r.code != 200 || json.Unmarshal([]byte(r.body), &g) != nil || g.Step != 1000 {
		return []string{fmt.Sprintf("graph of %s on %s: %d %.300s", w.name, addr, r.code, r.body)}
	}
	line := map[string]int{}
	for i, m := range g.Metrics {
		line[m["shard"]] = i
	}
	isAcked := map[int]bool{}
	for _, n := range acked {
		isAcked[n] = true
	}
	var problems []string
	for k := range 4 {
		key := fmt.Sprintf("s%d", k)
		if keep != nil && !keep[key] {
			continue
		}
		col, ok := line[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s on %s: no line %s", w.name, addr, key))
			continue
		}
		for n := k; n < maxWrites; n += 4 {
			row := int((w.base + int64(n)*1000 - g.Start) / g.Step)
			if row < 0 || row >= len(g.Values) {
				problems = append(problems, fmt.Sprintf("%s on %s: no step for write %d", w.name, addr, n))
				break
			}
			v, isNum := g.Values[row][col].(float64)
			switch {
			case isAcked[n] && !isNum:
				problems = append(problems, fmt.Sprintf("%s %s write %d acknowledged but missing", w.name, key, n))
			case isAcked[n] && v == 2*float64(n+1):
				problems = append(problems, fmt.Sprintf("%s %s write %d applied twice: %v", w.name, key, n, v))
			case isAcked[n] && v != float64(n+1):
				problems = append(problems, fmt.Sprintf("%s %s write %d reads %v, want %d", w.name, key, n, v, n+1))
			case !isAcked[n] && isNum && v != float64(n+1):
				problems = append(problems, fmt.Sprintf("%s %s step of write %d reads %v, never written", w.name, key, n, v))
			}
		}
	}
	if len(problems) > 0 {
		problems = append([]string{fmt.Sprintf("(%s answered %.600s)", addr, r.body)}, problems...)
	}
	return problems
}

// checkTraces checks that each acknowledged write's trace is on addr with
// its three spans, once each; only traces whose partition keep holds are
// checked (nil: all).
func (w *seqWriter) checkTraces(t *testing.T, addr string, acked []int, keep func(pcommon.TraceID) bool) []string {
	t.Helper()
	var problems []string
	for _, n := range acked {
		_, tid := crashTraceRequest(w.traceBase + n)
		if keep != nil && !keep(tid) {
			continue
		}
		r := answer(t, addr, "/api/traces/"+fmt.Sprintf("%x", tid[:]))
		if r.code != 200 || spanIDs(r.body) != 3 {
			problems = append(problems, fmt.Sprintf("trace of write %d on %s: %d, %d spans, want 3", n, addr, r.code, spanIDs(r.body)))
		}
	}
	return problems
}

// untilClean polls check until it finds no problem or timeout passes, and
// returns the problems it found last (the store nodes catch up
// asynchronously; the timeout only bounds a failure).
func untilClean(timeout time.Duration, check func() []string) []string {
	deadline := time.Now().Add(timeout)
	for {
		problems := check()
		if len(problems) == 0 || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(100 * time.Millisecond) // polling, as waitFor
	}
}

// report fails t with at most the first 20 problems.
func report(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	if len(problems) > 20 {
		problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
	}
	t.Errorf("%s:\n  %s", what, strings.Join(problems, "\n  "))
}

// queryLoop runs reads against the query node until stopped, each
// checked against the single node's answer taken before it started: a
// store node dying under it must not make an answer fail, differ or be
// partial.
type queryLoop struct {
	ok       atomic.Int64
	mu       sync.Mutex
	problems []string // the first 20
	failed   int
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func (c *procsCluster) startQueryLoop(t *testing.T, d *procsData) *queryLoop {
	t.Helper()
	paths := c.reads(&procsData{base: d.base, traces: d.traces, tracesFrom: d.tracesFrom, tracesTo: d.tracesTo})
	wants := make([]reply, len(paths))
	for i, p := range paths {
		wants[i] = answer(t, c.single.addr, p)
	}
	l := &queryLoop{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	// Two readers, so that reads are in flight when the node dies.
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			for i := r; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := paths[i%len(paths)]
				got, err := fetch(client, c.query.addr, path)
				switch {
				case err != nil:
					l.add(fmt.Sprintf("GET %s: %v", path, err))
				case got.partial != "":
					l.add(fmt.Sprintf("GET %s: partial (%s): %.200s", path, got.partial, got.body))
				case !same(path, got, wants[i%len(paths)]):
					l.add(fmt.Sprintf("GET %s: %d %.300s\nwant %.300s", path, got.code, got.body, wants[i%len(paths)].body))
				default:
					l.ok.Add(1)
				}
			}
		})
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

// waitAnswered waits until n reads were answered in full, or timeout
// passed, or a read failed (reported by finish); it says whether n were.
func (l *queryLoop) waitAnswered(n int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for l.ok.Load() < n && time.Now().Before(deadline) {
		l.mu.Lock()
		failed := l.failed
		l.mu.Unlock()
		if failed > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling, as waitFor
	}
	return l.ok.Load() >= n
}

func (l *queryLoop) add(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) < 20 {
		l.problems = append(l.problems, p)
	}
	l.failed++
}

func (l *queryLoop) finish() (ok int64, problems []string) {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed > len(l.problems) {
		return l.ok.Load(), append(slices.Clone(l.problems), fmt.Sprintf("… %d failed in all", l.failed))
	}
	return l.ok.Load(), slices.Clone(l.problems)
}

// fetch is answer for goroutines that may not fail the test.
func fetch(client *http.Client, addr, path string) (reply, error) {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, partial: resp.Header.Get("X-Sextant-Partial"), body: string(b)}, err
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
