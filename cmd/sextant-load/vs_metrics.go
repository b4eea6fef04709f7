package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// The metric protocols of the runs.
const (
	protoRemoteWrite = "remote-write" // Prometheus remote write 1.0: both servers
	protoAtlas       = "atlas"        // Atlas publish: Sextant's own
)

// spool is the request bodies of one load, written to a file before the
// clock starts: the full sizes do not fit in memory as bodies (10 GB of
// Atlas JSON at 1 000 000 × 60), and generating them during the run would
// compete with the server for the two cores. Senders read each body with
// one pread, from the page cache.
type spool struct {
	f      *os.File
	offs   []int64
	points int
	bytes  int64
}

// body reads body i into buf.
func (s *spool) body(i int, buf []byte) ([]byte, error) {
	n := s.offs[i+1] - s.offs[i]
	buf = slices.Grow(buf[:0], int(n))[:n]
	_, err := s.f.ReadAt(buf, s.offs[i])
	return buf, err
}

// len is the number of bodies.
func (s *spool) len() int { return len(s.offs) - 1 }

// close removes the spool file.
func (s *spool) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// writeSpool writes the workload as bodies of at most batch datapoints,
// time-major (every series' sample t before any sample t+1, as clients
// publish), in protocol, to a new file at path. It stops when ctx is
// done.
func writeSpool(ctx context.Context, path string, w *tsdbtest.Workload, protocol string, batch int) (*spool, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	s := &spool{f: f, offs: []int64{0}}
	bw := bufio.NewWriterSize(f, 4<<20)
	var (
		buf  []byte
		enc  remoteEncoder
		size int64
	)
	if protocol == protoRemoteWrite {
		enc = newRemoteEncoder(w)
	}
	for t := range w.Samples() {
		if err := ctx.Err(); err != nil {
			s.close()
			return nil, err
		}
		for from := 0; from < len(w.Series); from += batch {
			to := min(from+batch, len(w.Series))
			if protocol == protoRemoteWrite {
				buf = enc.append(buf[:0], w, t, from, to)
			} else {
				buf = w.AppendAtlas(buf[:0], t, from, to)
			}
			if _, err := bw.Write(buf); err != nil {
				s.close()
				return nil, err
			}
			size += int64(len(buf))
			s.offs = append(s.offs, size)
			for i := from; i < to; i++ {
				if !math.IsNaN(w.Values[i][t]) {
					s.points++
				}
			}
		}
	}
	s.bytes = size
	if err := bw.Flush(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// remoteEncoder builds remote-write bodies of the workload. Each series'
// labels are built once: __name__ is the name tag, with _total appended
// for counters (the Prometheus convention, which Sextant's remote write
// turns into rates as the Atlas counter dstype does); atlas.dstype is
// left out (the suffix carries it); the other tags are labels as they are.
type remoteEncoder struct {
	labels [][]prompb.Label
	req    prompb.WriteRequest
	raw    []byte
}

func newRemoteEncoder(w *tsdbtest.Workload) remoteEncoder {
	e := remoteEncoder{labels: make([][]prompb.Label, len(w.Series))}
	for i, s := range w.Series {
		e.labels[i] = remoteLabels(s, w.Kinds[i])
	}
	return e
}

// remoteLabels returns the remote-write labels of a workload series,
// sorted by name as Prometheus sends them.
func remoteLabels(s tags.Set, kind tsdbtest.Kind) []prompb.Label {
	ls := make([]prompb.Label, 0, len(s))
	for _, t := range s {
		switch t.Key {
		case tags.NameKey:
			name := t.Value
			if kind == tsdbtest.Counter {
				name += "_total"
			}
			ls = append(ls, prompb.Label{Name: "__name__", Value: name})
		case tsdb.DSTypeKey:
		default:
			ls = append(ls, prompb.Label{Name: t.Key, Value: t.Value})
		}
	}
	slices.SortFunc(ls, func(a, b prompb.Label) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return ls
}

// append appends the snappy-compressed WriteRequest of sample t of series
// [from, to) to dst.
func (e *remoteEncoder) append(dst []byte, w *tsdbtest.Workload, t, from, to int) []byte {
	ts := w.Start + int64(t)*w.Interval
	e.req.Timeseries = e.req.Timeseries[:0]
	samples := make([]prompb.Sample, 0, to-from)
	for i := from; i < to; i++ {
		v := w.Values[i][t]
		if math.IsNaN(v) {
			continue
		}
		samples = append(samples, prompb.Sample{Value: v, Timestamp: ts})
		e.req.Timeseries = append(e.req.Timeseries, prompb.TimeSeries{Labels: e.labels[i], Samples: samples[len(samples)-1:]})
	}
	n := e.req.Size()
	e.raw = slices.Grow(e.raw[:0], n)[:n]
	n, _ = e.req.MarshalToSizedBuffer(e.raw) // sized by Size: cannot fail
	return append(dst, snappy.Encode(nil, e.raw[len(e.raw)-n:])...)
}

// target is where one load goes: the URL and the headers of its protocol.
type target struct {
	url, contentType, encoding string
}

// targetFor returns the ingest endpoint of protocol on base (http://host:port).
func targetFor(base, protocol string) target {
	if protocol == protoRemoteWrite {
		return target{base + "/api/v1/write", "application/x-protobuf", "snappy"}
	}
	return target{base + "/api/v1/publish", "application/json", ""}
}

// sendSpool posts every body of sp to tg with conc concurrent senders,
// and measures the wall time, process pid's CPU seconds over the run and
// its RSS right after the last answer.
func sendSpool(ctx context.Context, sp *spool, tg target, conc, pid int, now func() time.Time) (load, error) {
	return sendMeasured(ctx, tg, sp.len(), sp.points, conc, pid, now, sp.body)
}

// groupedSum is the grouped sum of the runs: sum by app of one gauge
// name over the workload's whole range at its interval.
type groupedSum struct {
	name          string
	series, apps  int // series of the name, distinct apps among them
	start, end    int64
	step          time.Duration
	graphQ, promQ url.Values
}

// newGroupedSum picks the first gauge name of w.
func newGroupedSum(w *tsdbtest.Workload) (groupedSum, error) {
	g := groupedSum{start: w.Start, end: w.End(), step: time.Duration(w.Interval) * time.Millisecond}
	apps := map[string]bool{}
	for i, s := range w.Series {
		if g.name == "" && w.Kinds[i] == tsdbtest.Gauge {
			g.name = s.Name()
		}
		if g.name != "" && s.Name() == g.name {
			g.series++
			app, _ := s.Get("app")
			apps[app] = true
		}
	}
	if g.name == "" {
		return g, fmt.Errorf("the workload of %d series has no gauge", len(w.Series))
	}
	g.apps = len(apps)
	g.graphQ = url.Values{"q": {"name," + g.name + ",:eq,(,app,),:by"}, "format": {"json"}, "tz": {"UTC"},
		"s": {strconv.FormatInt(g.start, 10)}, "e": {strconv.FormatInt(g.end, 10)}, "step": {strconv.FormatInt(int64(g.step/time.Second), 10) + "s"}}
	// query_range answers points at start, start+step, … ≤ end, each the
	// step that ends there: the same steps as the graph API's [s, e).
	g.promQ = url.Values{"query": {`sum by (app) ({__name__="` + g.name + `"})`},
		"start": {strconv.FormatInt(g.start/1000+int64(g.step/time.Second), 10)},
		"end":   {strconv.FormatInt(g.end/1000, 10)}, "step": {strconv.FormatInt(int64(g.step/time.Second), 10)}}
	return g, nil
}

// checkGraph checks a graph API answer: one line per app.
func (g groupedSum) checkGraph(body []byte) error {
	var r struct {
		Metrics []json.RawMessage `json:"metrics"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("graph answer: %w", err)
	}
	if len(r.Metrics) != g.apps {
		return fmt.Errorf("graph answer has %d lines, want %d (one per app)", len(r.Metrics), g.apps)
	}
	return nil
}

// checkProm checks a query_range answer: one series per app, each with
// at least one point.
func (g groupedSum) checkProm(body []byte) error {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("query_range answer: %w", err)
	}
	if r.Status != "success" || len(r.Data.Result) != g.apps {
		return fmt.Errorf("query_range answer: status %q, %d series, want %d (one per app)", r.Status, len(r.Data.Result), g.apps)
	}
	for _, s := range r.Data.Result {
		if len(s.Values) == 0 {
			return fmt.Errorf("query_range answer: a series without points")
		}
	}
	return nil
}
