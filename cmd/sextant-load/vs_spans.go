package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/sextant-dev/sextant/tracing/tracingtest"
)

// spanWorkload is the span load of the runs: OTLP/HTTP protobuf requests
// of tracingtest.BatchSpans spans (the workload of
// BenchmarkTraceIngestHTTP), spread over window before end, encoded
// before the clock starts; both servers get the same bytes.
type spanWorkload struct {
	bodies [][]byte
	end    time.Time
	window time.Duration
}

// newSpanWorkload encodes spans/BatchSpans requests (at least one).
func newSpanWorkload(spans int, end time.Time, window time.Duration) (*spanWorkload, error) {
	n := max(1, spans/tracingtest.BatchSpans)
	sw := &spanWorkload{bodies: make([][]byte, n), end: end, window: window}
	for i := range sw.bodies {
		b, err := ptraceotlp.NewExportRequestFromTraces(tracingtest.Batch(i, end, window)).MarshalProto()
		if err != nil {
			return nil, err
		}
		sw.bodies[i] = b
	}
	return sw, nil
}

// spans is the number of spans of the workload.
func (sw *spanWorkload) spans() int { return len(sw.bodies) * tracingtest.BatchSpans }

// send posts every body to url (an OTLP/HTTP /v1/traces endpoint) with
// conc senders and measures the wall time, process pid's CPU seconds over
// the run and its RSS after.
func (sw *spanWorkload) send(ctx context.Context, url string, conc, pid int, now func() time.Time) (load, error) {
	return sendMeasured(ctx, target{url, "application/x-protobuf", ""}, len(sw.bodies), sw.spans(), conc, pid, now,
		func(i int, _ []byte) ([]byte, error) { return sw.bodies[i], nil })
}

// traceURLs returns n trace-by-id URLs of the Jaeger query API on base,
// for traces picked at random (fixed seed) among those sent.
func (sw *spanWorkload) traceURLs(base string, n int) []string {
	r := rand.New(rand.NewPCG(7, 7))
	urls := make([]string, n)
	per := tracingtest.BatchSpans / tracingtest.TraceSpans
	for j := range urls {
		id := tracingtest.TraceID(r.IntN(len(sw.bodies)), r.IntN(per))
		urls[j] = base + "/api/traces/" + hex.EncodeToString(id[:])
	}
	return urls
}

// searchURL returns a Jaeger query API search on base: one service and
// operation, spans of at least 50 ms, the newest 20 traces, over the
// workload's window.
func (sw *spanWorkload) searchURL(base string) string {
	q := url.Values{"service": {"svc-03"}, "operation": {"op-2"}, "minDuration": {"50ms"}, "limit": {"20"},
		"start": {strconv.FormatInt(sw.end.Add(-sw.window-time.Minute).UnixMicro(), 10)},
		"end":   {strconv.FormatInt(sw.end.Add(time.Minute).UnixMicro(), 10)}}
	return base + "/api/traces?" + q.Encode()
}

// checkTrace checks a trace-by-id answer: one trace of TraceSpans spans.
func checkTrace(body []byte) error {
	var r struct {
		Data []struct {
			Spans []json.RawMessage `json:"spans"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("trace answer: %w", err)
	}
	if len(r.Data) != 1 || len(r.Data[0].Spans) != tracingtest.TraceSpans {
		n := 0
		if len(r.Data) > 0 {
			n = len(r.Data[0].Spans)
		}
		return fmt.Errorf("trace answer: %d traces, the first of %d spans, want 1 of %d", len(r.Data), n, tracingtest.TraceSpans)
	}
	return nil
}

// checkSearch checks a search answer: at least one trace, at most 20.
func checkSearch(body []byte) error {
	var r struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("search answer: %w", err)
	}
	if len(r.Data) == 0 || len(r.Data) > 20 {
		return fmt.Errorf("search answer: %d traces, want 1 to 20", len(r.Data))
	}
	return nil
}

// timeGets gets each URL in turn (one request at a time, after one
// untimed warm-up request of the first) and returns the latencies; every
// answer must be 200 and pass check.
//
// The client does as little as it can between timed requests, since it
// shares the machine's cores with the server: it reads every answer into
// one reused buffer and runs check (a JSON decode of up to a megabyte,
// tens of milliseconds here) once per distinct answer, found by its
// SHA-256. Decoding every answer left the client's garbage collection and
// a megabyte of freshly touched memory to run into the next timed request
// (docs/benchmarks.md, "Side by side").
func timeGets(ctx context.Context, client *http.Client, urls []string, check func([]byte) error, now func() time.Time) (latency, error) {
	var buf bytes.Buffer
	checked := map[[sha256.Size]byte]bool{}
	// get answers how long the server took to send the answer of u: the
	// request until the last byte is read. The check comes after and is
	// not timed.
	get := func(u string) (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		buf.Reset()
		start := now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = buf.ReadFrom(resp.Body)
		took := now().Sub(start)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		body := buf.Bytes()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: status %d: %.300s", u, resp.StatusCode, body)
		}
		sum := sha256.Sum256(body)
		if !checked[sum] {
			if err := check(body); err != nil {
				return 0, fmt.Errorf("GET %s: %w", u, err)
			}
			checked[sum] = true
		}
		return took, nil
	}
	if len(urls) == 0 {
		return latency{}, nil
	}
	if _, err := get(urls[0]); err != nil {
		return latency{}, err
	}
	d := make([]time.Duration, 0, len(urls))
	for _, u := range urls {
		took, err := get(u)
		if err != nil {
			return latency{}, err
		}
		d = append(d, took)
	}
	return summarize(d), nil
}
