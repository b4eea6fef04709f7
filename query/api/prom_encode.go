package api

import (
	"math"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sextant-dev/sextant/query/promql"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// The Prometheus answer's JSON, written by hand: a panel's answer is tens
// of thousands of points, and each carries its time, so the answer is
// about twice the graph API's bytes for the same data. Profiled on
// BenchmarkPromQueryRange (docs/benchmarks.md): formatting the values is
// most of the cost; the rest was page faults of a fresh megabyte buffer
// per request and the copy joining the parallel parts, which the pooled
// buffers and writing the parts in turn remove.

// maxPooledBuffer is the capacity above which an answer buffer is not
// kept for reuse: one huge answer must not pin its memory afterwards.
const maxPooledBuffer = 16 << 20

// parallelPoints is the size of a matrix answer (points in all series)
// from which its series are formatted on several cores: formatting a
// value costs about 80 ns, a goroutine a few µs.
const parallelPoints = 20_000

// bufPool holds answer buffers for reuse. The zero value is ready.
type bufPool struct{ p sync.Pool }

// get returns an empty buffer with room for at least n bytes.
func (bp *bufPool) get(n int) *[]byte {
	b, _ := bp.p.Get().(*[]byte)
	if b == nil {
		b = new([]byte)
	}
	if cap(*b) < n {
		*b = make([]byte, 0, n)
	}
	*b = (*b)[:0]
	return b
}

// put returns b to the pool unless it grew past maxPooledBuffer.
func (bp *bufPool) put(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	bp.p.Put(b)
}

// answerSize estimates the bytes of a matrix answer: about 40 a point.
func answerSize(series, points int) int { return series * (128 + 40*points) }

// writeResult answers an evaluation. A large matrix is formatted by up to
// four goroutines into parts, pooled buffers of their own, claimed in
// order; each part is written as soon as it and those before it are
// ready, so that writing the answer overlaps formatting its rest (a
// megabyte takes about a millisecond to write here). Such an answer has no
// Content-Length and goes out chunked, as Prometheus's does; a small one
// is written whole, with its length. Nothing is copied twice.
func (p *promAPI) writeResult(w http.ResponseWriter, res *promql.Result) {
	head := p.bufs.get(256 + answerSize(len(res.Series), res.Points))
	defer p.bufs.put(head)
	b := *head
	b = append(b, `{"status":"success","data":{"resultType":"`...)
	b = append(b, res.Type...)
	b = append(b, `","result":`...)
	var parts *matrixParts
	switch res.Type {
	case promql.TypeScalar:
		b = appendPoint(b, res.Start, res.Scalar[len(res.Scalar)-1])
	case promql.TypeString:
		b = append(b, '[')
		b = appendSeconds(b, res.Start)
		b = append(b, ',')
		b = appendJSONString(b, res.String)
		b = append(b, ']')
	case promql.TypeVector:
		b = append(b, '[')
		for i, s := range res.Series {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMetric(b, s.Tags)
			b = append(b, `,"value":`...)
			b = appendPoint(b, res.Start, s.Values[len(s.Values)-1])
			b = append(b, '}')
		}
		b = append(b, ']')
	case promql.TypeMatrix:
		b = append(b, '[')
		b, parts = p.appendMatrix(b, res)
		if parts != nil {
			// Every part goes back to the pool once its goroutine is done,
			// also when the client went away before it was written.
			defer func() {
				parts.wait()
				for _, pt := range parts.bufs {
					p.bufs.put(pt)
				}
			}()
		}
	}
	// The tail goes after the parts: into the same buffer, past its end.
	tail := len(b)
	if res.Type == promql.TypeMatrix {
		b = append(b, ']')
	}
	b = append(b, '}')
	if isPartial(w) {
		res.Warnings = append(res.Warnings, partialWarning)
	}
	if len(res.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, wn := range res.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, wn)
		}
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	*head = b
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if parts == nil {
		h.Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
		return
	}
	if _, err := w.Write(b[:tail]); err != nil {
		return
	}
	for k, pt := range parts.bufs {
		<-parts.ready[k]
		if _, err := w.Write(*pt); err != nil {
			return
		}
	}
	_, _ = w.Write(b[tail:])
}

// matrixParts are the parts of an answer being formatted: part k may be
// read once ready[k] is closed.
type matrixParts struct {
	bufs  []*[]byte
	ready []chan struct{}
	wg    sync.WaitGroup
}

// wait returns once every goroutine formatting the parts is done.
func (m *matrixParts) wait() { m.wg.Wait() }

// formatParts formats items 0 … n-1 with format on workers goroutines,
// into parts (buffers of pool, sized by size of their item count) of
// consecutive items, four parts a goroutine, claimed in order: the first
// parts are ready, and may be written, while the last are formatted, and
// the goroutines finish within a small part of each other. It returns at
// once; the caller reads each part once it is ready, waits, and puts the
// buffers back into pool.
func formatParts(pool *bufPool, n, workers int, size func(items int) int, format func(b []byte, i int) []byte) *matrixParts {
	nparts := min(4*workers, n)
	per := (n + nparts - 1) / nparts
	m := &matrixParts{}
	for lo := 0; lo < n; lo += per {
		m.bufs = append(m.bufs, pool.get(size(min(per, n-lo))))
		m.ready = append(m.ready, make(chan struct{}))
	}
	var next atomic.Int64
	for range workers {
		m.wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= len(m.bufs) {
					return
				}
				b := *m.bufs[k]
				for i := k * per; i < min((k+1)*per, n); i++ {
					b = format(b, i)
				}
				*m.bufs[k] = b
				close(m.ready[k])
			}
		})
	}
	return m
}

// appendMatrix formats the series of a matrix answer (without the array's
// brackets). A small answer is appended to b, and the parts are nil; a
// large one is formatted into parts, on goroutines still running when it
// returns (matrixParts), which the caller writes after b and returns to
// the pool. Every part but the first starts with the comma that separates
// it from the one before.
func (p *promAPI) appendMatrix(b []byte, res *promql.Result) ([]byte, *matrixParts) {
	// The points' times are the same for every series: `[<seconds>,"` is
	// formatted once per step and copied into every series.
	var stamps []byte
	var offs []int
	if res.Times == nil {
		stamps = make([]byte, 0, 16*res.Points)
		offs = make([]int, res.Points+1)
		for j := range res.Points {
			stamps = append(stamps, '[')
			stamps = appendSeconds(stamps, res.Start+int64(j)*res.Step)
			stamps = append(stamps, ',', '"')
			offs[j+1] = len(stamps)
		}
	}
	one := func(b []byte, i int) []byte {
		s := res.Series[i]
		b = appendMetric(b, s.Tags)
		b = append(b, `,"values":[`...)
		if res.Times != nil {
			for j, v := range s.Values {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendPoint(b, res.Times[i][j], v)
			}
			return append(b, "]}"...)
		}
		n := 0
		for j, v := range s.Values {
			if v != v { // NaN: no point, as Prometheus has no sample there
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = append(b, stamps[offs[j]:offs[j+1]]...)
			b = appendPromFloat(b, v)
			b = append(b, '"', ']')
		}
		return append(b, "]}"...)
	}
	workers := min(runtime.GOMAXPROCS(0), 4, len(res.Series))
	if workers < 2 || len(res.Series)*res.Points < parallelPoints {
		for i := range res.Series {
			if i > 0 {
				b = append(b, ',')
			}
			b = one(b, i)
		}
		return b, nil
	}
	m := formatParts(&p.bufs, len(res.Series), workers,
		func(n int) int { return answerSize(n, res.Points) },
		func(b []byte, i int) []byte {
			if i > 0 {
				b = append(b, ',')
			}
			return one(b, i)
		})
	return b, m
}

// appendMetric appends `{"metric":{...}` (the caller closes the object).
func appendMetric(b []byte, ts tags.Set) []byte {
	b = append(b, `{"metric":{`...)
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.Key)
		b = append(b, ':')
		b = appendJSONString(b, t.Value)
	}
	return append(b, '}')
}

// appendPoint appends [seconds,"value"].
func appendPoint(b []byte, t int64, v float64) []byte {
	b = append(b, '[')
	b = appendSeconds(b, t)
	b = append(b, ',', '"')
	b = appendPromFloat(b, v)
	return append(b, '"', ']')
}

// appendSeconds appends Unix ms as seconds with up to three decimals.
func appendSeconds(b []byte, t int64) []byte {
	// Fast path: whole seconds, as nearly every step is.
	if t%1000 == 0 {
		return strconv.AppendInt(b, t/1000, 10)
	}
	return strconv.AppendFloat(b, float64(t)/1000, 'f', -1, 64)
}

// appendPromFloat formats a value as Prometheus does: NaN, +Inf, -Inf, or
// the shortest decimal.
func appendPromFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15 && (v != 0 || !math.Signbit(v)):
		// Fast path: integers, formatted the same without the float code.
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendJSONString appends s as a JSON string: the graph API's encoder,
// which, as encoding/json does, writes invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte { return appendString(b, s) }
