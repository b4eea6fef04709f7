package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// exactlyBody is a publish request of data source type ds: name and the
// (time offset in ms from base, value) samples.
func exactlyBody(base int64, name, ds string, samples ...[2]float64) []byte {
	var b bytes.Buffer
	b.WriteString(`{"tags":{"app":"exactly"},"metrics":[`)
	for i, s := range samples {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"tags":{"name":%q,"atlas.dstype":%q},"timestamp":%d,"value":%g}`, name, ds, base+int64(s[0]), s[1])
	}
	b.WriteString("]}")
	return b.Bytes()
}

// TestClusterExactlyOnce is issue 16's "applying a record twice changes
// nothing" on the real binary: a cluster node (every role, one partition,
// so that a publish is one record) on a kfake cluster, with the fault
// hook SEXTANT_TEST_EXIT_AFTER_APPLY: it exits right after its store made
// a batch durable and before it kept the batch's offset. Restarted on its
// data dir, it answers a sum and two rates (one sample of which arrives
// out of order) exactly as a single node sent the same publishes: the
// batch applied once. Before the store kept its mark with the data, the
// restart applied it again: the sum twice, a rate sample overwritten.
func TestClusterExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	f := startFaultNode(t, "exactly")
	node, single := f.node, f.single

	base := time.Now().UnixMilli()/10_000*10_000 - 30_000
	publish := func(addr string, bodies ...[]byte) {
		t.Helper()
		for _, b := range bodies {
			if code, resp := post(t, "http://"+addr+"/api/v1/publish", b); code != 200 {
				t.Fatalf("publish to %s = %d %s", addr, code, resp)
			}
		}
	}
	queries := []string{"name,x.sum,:eq", "name,x.rate,:eq", "name,x.late,:eq"}
	graph := func(q string, strong bool) string {
		v := url.Values{"q": {q}, "s": {fmt.Sprint(base - 5000)}, "e": {fmt.Sprint(base + 15000)}, "step": {"1s"}, "format": {"json"}}
		if strong {
			v.Set("consistency", "strong")
		}
		return "/api/v1/graph?" + v.Encode()
	}
	// waitApplied waits until the node answers every query whole, having
	// applied the log to its end (a strong read).
	waitApplied := func(what string) {
		t.Helper()
		waitFor(t, 60*time.Second, what, func() bool {
			for _, q := range queries {
				r := answer(t, node.addr, graph(q, true))
				if r.code != 200 || r.partial != "" || !hasData(graph(q, false), r.body) {
					return false
				}
			}
			return true
		})
	}

	// The first publish, applied before the second is sent: the second is
	// then a batch of its own.
	one := [][]byte{exactlyBody(base, "x.sum", "sum", [2]float64{1000, 3}),
		exactlyBody(base, "x.rate", "rate", [2]float64{2000, 10}),
		exactlyBody(base, "x.late", "rate", [2]float64{9000, 7})}
	publish(single.addr, one...)
	publish(node.addr, one...)
	waitApplied("the first publish applied")

	// The second in one request, so one record: two sum datapoints, two
	// rate samples in order, a rate sample older than its series' last,
	// and the trigger of the fault hook.
	var second bytes.Buffer
	second.WriteString(`{"tags":{"app":"exactly"},"metrics":[`)
	for i, m := range []struct {
		name, ds string
		dt, v    float64
	}{{"x.sum", "sum", 2000, 4}, {"x.sum", "sum", 3500, 5}, {"x.rate", "rate", 4300, 20}, {"x.rate", "rate", 7700, 30},
		{"x.late", "rate", 5200, 9}, {"x.trigger", "gauge", 0, 1}} {
		if i > 0 {
			second.WriteByte(',')
		}
		fmt.Fprintf(&second, `{"tags":{"name":%q,"atlas.dstype":%q},"timestamp":%d,"value":%g}`, m.name, m.ds, base+int64(m.dt), m.v)
	}
	second.WriteString("]}")
	publish(single.addr, second.Bytes())
	f.sendTrigger("/api/v1/publish", second.Bytes())

	node = f.restartAfterFault()
	waitApplied("the restarted node caught up")
	for _, q := range queries {
		want := answer(t, single.addr, graph(q, false))
		got := answer(t, node.addr, graph(q, true))
		if !same(graph(q, false), want, got) {
			t.Errorf("%s after the restart differs from the single node's:\nsingle:    %s\nrestarted: %s", q, want.body, got.body)
		}
	}
}

// faultNode is a cluster node of every role with one partition (so that a
// request is one record) on a kfake cluster of its own, started with the
// fault hook on the name x.trigger, and a single node beside it.
type faultNode struct {
	t            *testing.T
	bin          string
	flags        []string
	node, single *binary
}

// startFaultNode starts a faultNode whose topics start with prefix.
func startFaultNode(t *testing.T, prefix string) *faultNode {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	f := &faultNode{t: t, bin: buildBinary(t)}
	f.flags = []string{"--data-dir", t.TempDir(), "--memory-retention", "1h", "--kafka-brokers", strings.Join(kc.ListenAddrs(), ","),
		"--role", "all", "--node-id", prefix + "-1", "--kafka-topic-prefix", prefix, "--kafka-partitions", "1",
		"--replication-factor", "1"}
	node := runBinary(t, f.bin, []string{exitAfterApplyEnv + "=x.trigger"}, f.flags...)
	f.node = node
	t.Cleanup(func() { stopBinary(t, node) })
	f.single = runBinary(t, f.bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "1h")
	t.Cleanup(func() { stopBinary(t, f.single) })
	return f
}

// sendTrigger posts the request holding x.trigger to the node. The node
// may exit at the fault hook before it answers (its consumer applied the
// record, so Kafka had acknowledged it): a request that fails that way is
// fine, and restartAfterFault checks the exit; an answer other than 200
// fails the test.
func (f *faultNode) sendTrigger(path string, body []byte, headers ...string) {
	t := f.t
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+f.node.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("the trigger's request ended without an answer (the node exited at the hook): %v", err)
		return
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s with the trigger = %d %s", path, resp.StatusCode, b)
	}
}

// restartAfterFault waits for the node to exit at the fault hook (status
// 3), then starts it again, without the hook, on the same data dir.
func (f *faultNode) restartAfterFault() *binary {
	t := f.t
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f.node.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the node did not exit at the fault hook within 60 s")
	}
	if code := f.node.cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("the node exited with status %d, want 3 (the fault hook)", code)
	}
	node := runBinary(t, f.bin, nil, f.flags...)
	f.node = node
	t.Cleanup(func() { stopBinary(t, node) })
	return node
}

// callRequest is an OTLP request of one trace k: a span of ex-front named
// "call" and its child of ex-back named child, in one request (so one
// record of the spans topic), which the dependency graph counts as one
// call.
func callRequest(t *testing.T, at time.Time, k byte, child string) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	tid := pcommon.TraceID{0x0e, 0x1c, 15: k}
	for i, svc := range []string{"ex-front", "ex-back"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{k, 7: byte(i + 1)})
		name := "call"
		if i > 0 {
			s.SetParentSpanID(pcommon.SpanID{k, 7: 1})
			name = child
		}
		s.SetName(name)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(10 * time.Millisecond)))
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClusterSpansExactlyOnce is TestClusterExactlyOnce for the spans
// topic: the fault hook exits right after the span store made the record
// of a trace durable (the trace has a span named x.trigger) and before
// the offset was kept. Restarted on its data dir and caught up (a strong
// read), the node's /api/dependencies answers as a single node sent the
// same traces: each call counted once. Before the span store kept its
// mark with the spans, the restart applied the record again and counted
// its call twice.
func TestClusterSpansExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	f := startFaultNode(t, "spansexactly")
	node, single := f.node, f.single

	at := time.Now().Add(-time.Minute)
	send := func(body []byte) {
		t.Helper()
		for _, addr := range []string{single.addr, node.addr} {
			if code, resp := post(t, "http://"+addr+"/v1/traces", body, "Content-Type", "application/x-protobuf"); code != 200 {
				t.Fatalf("OTLP traces to %s: %d %s", addr, code, resp)
			}
		}
	}
	deps := func(strong bool) string {
		v := url.Values{"endTs": {fmt.Sprint(time.Now().Add(time.Minute).UnixMilli())}, "lookback": {"3600000"}}
		if strong {
			v.Set("consistency", "strong")
		}
		return "/api/dependencies?" + v.Encode()
	}
	// waitCalls waits until the node, caught up with the log (a strong
	// read), answers whole with a body holding want.
	waitCalls := func(what, want string) reply {
		t.Helper()
		var r reply
		waitFor(t, 60*time.Second, what, func() bool {
			r = answer(t, node.addr, deps(true))
			return r.code == 200 && r.partial == "" && strings.Contains(r.body, want)
		})
		return r
	}

	// The first trace, applied before the second is sent: the second is
	// then a fetch of its own.
	send(callRequest(t, at, 1, "back"))
	waitCalls("the first trace applied", `"callCount":1`)
	trigger := callRequest(t, at, 2, "x.trigger")
	if code, resp := post(t, "http://"+single.addr+"/v1/traces", trigger, "Content-Type", "application/x-protobuf"); code != 200 {
		t.Fatalf("OTLP traces to the single node: %d %s", code, resp)
	}
	f.sendTrigger("/v1/traces", trigger, "Content-Type", "application/x-protobuf")

	node = f.restartAfterFault()
	got := waitCalls("the restarted node caught up", `"parent":"ex-front","child":"ex-back"`)
	want := answer(t, single.addr, deps(false))
	if want.code != 200 || !strings.Contains(want.body, `"parent":"ex-front","child":"ex-back","callCount":2`) {
		t.Fatalf("the single node's dependencies: %d %s", want.code, want.body)
	}
	if got.body != want.body {
		t.Errorf("/api/dependencies after the restart differs from the single node's:\nsingle:    %s\nrestarted: %s", want.body, got.body)
	}
}
