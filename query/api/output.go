package api

import (
	"bytes"
	"image/color"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/chart"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// appendJSON writes format=json (and std.json): asl.md §3.3, with
// non-finite values as the strings "NaN" and "Infinity".
func appendJSON(buf []byte, g *graphRequest, res *query.Result, took time.Duration) []byte {
	// The document is built by appending to one slice, not with
	// encoding/json: a graph of 1440 points by a few hundred lines is
	// hundreds of thousands of values, and reflection plus a float
	// formatter that cannot write "NaN" cost more than the evaluation.
	n := g.rng.N()
	// Size the buffer once: about 20 bytes a value.
	if need := 256 + len(res.Lines)*(64+20*n); cap(buf)-len(buf) < need {
		buf = append(make([]byte, 0, len(buf)+need), buf...)
	}
	buf = append(buf, `{"start":`...)
	buf = strconv.AppendInt(buf, g.rng.Start, 10)
	buf = append(buf, `,"step":`...)
	buf = strconv.AppendInt(buf, g.rng.Step, 10)
	buf = appendLegends(buf, res.Lines)
	buf = appendMetrics(buf, res.Lines)
	// values is row-major, one array per timestamp holding each line's
	// value at it (asl.md §3.3), not one array per line.
	buf = append(buf, `,"values":[`...)
	buf = appendRows(buf, res.Lines, n)
	// notices is always present and empty: warnings reach the client in
	// the X-Sextant-Partial header and the partial flag instead.
	buf = append(buf, `],"notices":[]`...)
	// explain's counters come from the evaluation (eval.Stats): what
	// the store was asked to read, against what the graph shows.
	if g.explain {
		st := res.Stats
		points := int64(n)
		buf = append(buf, `,"explain":{"dataFetchTime":`...)
		buf = strconv.AppendInt(buf, st.FetchTime.Milliseconds(), 10)
		buf = append(buf, `,"totalTime":`...)
		buf = strconv.AppendInt(buf, took.Milliseconds(), 10)
		buf = append(buf, `,"seriesScanned":`...)
		buf = strconv.AppendInt(buf, int64(st.SeriesScanned), 10)
		buf = append(buf, `,"inputLines":`...)
		buf = strconv.AppendInt(buf, int64(st.InputLines), 10)
		buf = append(buf, `,"graphLines":`...)
		buf = strconv.AppendInt(buf, int64(len(res.Lines)), 10)
		buf = append(buf, `,"inputDatapoints":`...)
		buf = strconv.AppendInt(buf, int64(st.DatapointsScanned), 10)
		buf = append(buf, `,"graphDatapoints":`...)
		buf = strconv.AppendInt(buf, int64(len(res.Lines))*points, 10)
		buf = append(buf, '}')
	}
	return append(buf, "}\n"...)
}

// appendRows appends the rows of values of lines, n of them, comma
// separated. A large graph's rows are formatted on up to four goroutines
// (formatParts), then appended in order: formatting the values is most of
// the answer's cost (about 80 ns a value).
func appendRows(buf []byte, lines []query.Line, n int) []byte {
	row := func(b []byte, i int) []byte {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, l := range lines {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, l.Values[i])
		}
		return append(b, ']')
	}
	workers := min(runtime.GOMAXPROCS(0), 4, n)
	if workers < 2 || n*len(lines) < parallelPoints {
		for i := range n {
			buf = row(buf, i)
		}
		return buf
	}
	m := formatParts(&rowBufs, n, workers, func(rows int) int { return rows * (2 + 20*len(lines)) }, row)
	m.wait()
	for _, pt := range m.bufs {
		buf = append(buf, *pt...)
		rowBufs.put(pt)
	}
	return buf
}

// rowBufs holds the buffers of appendRows's parts for reuse.
var rowBufs bufPool

// appendLegends appends the "legend" member: each line's label, in the
// order of the lines (the order of values' columns).
func appendLegends(buf []byte, lines []query.Line) []byte {
	buf = append(buf, `,"legend":[`...)
	for i, l := range lines {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, l.Label)
	}
	return append(buf, ']')
}

// appendMetrics appends the "metrics" member: each line's tags as an
// object, in the order of the lines.
func appendMetrics(buf []byte, lines []query.Line) []byte {
	buf = append(buf, `,"metrics":[`...)
	for i, l := range lines {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendTags(buf, l.Tags)
	}
	return append(buf, ']')
}

// appendTags appends ts as a JSON object. A tags.Set is sorted by key and
// holds each key once, so the object's keys come out sorted (asl.md §3.3)
// with no sorting here.
func appendTags(buf []byte, ts tags.Set) []byte {
	buf = append(buf, '{')
	for i, t := range ts {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, t.Key)
		buf = append(buf, ':')
		buf = appendString(buf, t.Value)
	}
	return append(buf, '}')
}

// appendValue appends v as Atlas does: a JSON number when finite, else
// the string "NaN", "Infinity" or "-Infinity" (JSON has no literal for
// them). Finite numbers use expr.AppendDouble, Java's Double.toString
// shape, so a value reads the same here as in the CSV and in Atlas.
func appendValue(buf []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		buf = append(buf, '"')
		buf = expr.AppendDouble(buf, v)
		return append(buf, '"')
	}
	return expr.AppendDouble(buf, v)
}

// appendString writes a JSON string.
func appendString(buf []byte, s string) []byte {
	// Tag values are user input of any bytes. Valid UTF-8 is copied as
	// it is; an invalid byte becomes U+FFFD, so the document stays valid
	// JSON whatever was published.
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				buf = append(buf, `\ufffd`...)
			} else {
				buf = append(buf, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\t':
			buf = append(buf, '\\', 't')
		case '\r':
			buf = append(buf, '\\', 'r')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		i++
	}
	return append(buf, '"')
}

// appendStatsJSON writes format=stats.json: the summary of each line.
func appendStatsJSON(b *bytes.Buffer, g *graphRequest, res *query.Result) {
	buf := make([]byte, 0, 4096)
	buf = append(buf, `{"start":`...)
	buf = strconv.AppendInt(buf, g.rng.Start, 10)
	buf = append(buf, `,"end":`...)
	buf = strconv.AppendInt(buf, g.rng.End, 10)
	buf = append(buf, `,"step":`...)
	buf = strconv.AppendInt(buf, g.rng.Step, 10)
	buf = appendLegends(buf, res.Lines)
	buf = appendMetrics(buf, res.Lines)
	buf = append(buf, `,"stats":[`...)
	for i, l := range res.Lines {
		if i > 0 {
			buf = append(buf, ',')
		}
		// The same summary as :stat, :sort and :topk use (NaN points
		// are not counted; avg is total over count).
		s := eval.Summarize(l.Values)
		buf = append(buf, `{"count":`...)
		buf = strconv.AppendInt(buf, int64(s.Count), 10)
		for _, f := range []struct {
			k string
			v float64
		}{{"avg", s.Avg()}, {"total", s.Total}, {"max", s.Max}, {"min", s.Min}, {"last", s.Last}} {
			buf = append(buf, ',', '"')
			buf = append(buf, f.k...)
			buf = append(buf, '"', ':')
			buf = appendValue(buf, f.v)
		}
		buf = append(buf, '}')
	}
	buf = append(buf, "],\"notices\":[]}\n"...)
	b.Write(buf)
}

// writeCSV writes format=csv (comma, quoted header) or txt (tab): a
// timestamp column and one column per line.
func writeCSV(b *bytes.Buffer, g *graphRequest, res *query.Result, sep byte) {
	// CSV quotes every label (doubling inner quotes, RFC 4180); the
	// tab-separated txt has no quoting, so a tab or newline inside a
	// label becomes a space to keep the columns aligned.
	quote := func(s string) string {
		if sep == '\t' {
			return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
		}
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	b.WriteString(quote("timestamp"))
	for _, l := range res.Lines {
		b.WriteByte(sep)
		b.WriteString(quote(l.Label))
	}
	b.WriteByte('\n')
	buf := make([]byte, 0, 64)
	for i := 0; i < g.rng.N(); i++ {
		// Timestamps are in the request's primary tz, ISO 8601 as Atlas
		// writes them; values use the same formatting as JSON, NaN
		// written as NaN.
		t := g.rng.Start + int64(i)*g.rng.Step
		b.WriteString(time.UnixMilli(t).In(g.loc).Format(time.RFC3339))
		for _, l := range res.Lines {
			b.WriteByte(sep)
			b.Write(expr.AppendDouble(buf[:0], l.Values[i]))
		}
		b.WriteByte('\n')
	}
}

// writeErrorImage answers a png request that failed with an image of the
// message, so a broken dashboard panel says what is wrong.
func (a *API) writeErrorImage(w http.ResponseWriter, v url.Values, err error) {
	// The image carries the status and message of the JSON error (the
	// same classification: a user error 4xx, a fault 500), and the
	// status line is set too, so a client that checks it still sees it.
	code, body := a.errorOf(err)
	// The requested size when it is sane (the error may be about w or
	// h themselves), else Atlas's default 700×300.
	width, e1 := strconv.Atoi(v.Get("w"))
	height, e2 := strconv.Atoi(v.Get("h"))
	if e1 != nil || width < 100 || width > 4000 {
		width = 700
	}
	if e2 != nil || height < 50 || height > 4000 {
		height = 300
	}
	s := &chart.Scene{W: width, H: height, Background: color.NRGBA{0xff, 0xff, 0xff, 0xff}}
	red := color.NRGBA{0xcc, 0x00, 0x00, 0xff}
	s.Ops = append(s.Ops, chart.Rect{X: 0, Y: 0, W: float64(width), H: 3, Fill: red})
	y := 24.0
	// About 7 pixels a character in the chart's font: wrap to the
	// width, and stop at the bottom edge rather than overflow.
	for _, line := range wrap(strconv.Itoa(code)+" "+body.Message, max(10, (width-16)/7)) {
		if y > float64(height)-8 {
			break
		}
		s.Ops = append(s.Ops, chart.Text{X: 8, Y: y, S: line, Color: red})
		y += 16
	}
	var buf bytes.Buffer
	if err := chart.WritePNG(&buf, s); err != nil {
		a.writeError(w, err)
		return
	}
	a.reg.Counter("sextant.query.errors", "status", strconv.Itoa(code)).Increment()
	w.Header().Set("Content-Type", "image/png")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// wrap splits s into lines of at most n characters, at spaces when it can.
func wrap(s string, n int) []string {
	var out []string
	for len([]rune(s)) > n {
		r := []rune(s)
		cut := n
		for i := n; i > n/2; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		out = append(out, string(r[:cut]))
		s = strings.TrimLeft(string(r[cut:]), " ")
	}
	return append(out, s)
}
