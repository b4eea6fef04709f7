package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/promql"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// wantPromJSON builds the answer of res with encoding/json, as a
// reference for the hand-written encoder.
func wantPromJSON(res *promql.Result) []byte {
	type point [2]any
	sec := func(t int64) any { return json.Number(strconv.FormatFloat(float64(t)/1000, 'f', -1, 64)) }
	val := func(v float64) string {
		switch {
		case math.IsNaN(v):
			return "NaN"
		case math.IsInf(v, 1):
			return "+Inf"
		case math.IsInf(v, -1):
			return "-Inf"
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	metric := func(ts tags.Set) map[string]string {
		m := map[string]string{}
		for _, t := range ts {
			m[t.Key] = t.Value
		}
		return m
	}
	var result any
	switch res.Type {
	case promql.TypeScalar:
		result = point{sec(res.Start), val(res.Scalar[len(res.Scalar)-1])}
	case promql.TypeMatrix:
		out := []any{}
		for i, s := range res.Series {
			pts := []point{}
			for j, v := range s.Values {
				switch {
				case res.Times != nil:
					pts = append(pts, point{sec(res.Times[i][j]), val(v)})
				case !math.IsNaN(v):
					pts = append(pts, point{sec(res.Start + int64(j)*res.Step), val(v)})
				}
			}
			out = append(out, map[string]any{"metric": metric(s.Tags), "values": pts})
		}
		result = out
	}
	env := map[string]any{"status": "success", "data": map[string]any{"resultType": res.Type, "result": result}}
	if len(res.Warnings) > 0 {
		env["warnings"] = res.Warnings
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return b
}

// matrix returns a matrix of n series × points with awkward values: NaN
// gaps, infinities, integers, negative zero and full-precision floats.
func matrix(n, points int) *promql.Result {
	res := &promql.Result{Type: promql.TypeMatrix, Start: 1_700_000_000_000, Step: 60_000, Points: points}
	for i := range n {
		vals := make([]float64, points)
		for j := range vals {
			switch (i + j) % 7 {
			case 0:
				vals[j] = math.NaN()
			case 1:
				vals[j] = float64(j)
			case 2:
				vals[j] = math.Inf(1 - 2*(j%2))
			case 3:
				vals[j] = math.Copysign(0, -1)
			default:
				vals[j] = float64(i)*1e-3 + float64(j)/7 + 1e20*float64(j%3)
			}
		}
		res.Series = append(res.Series, promql.Series{
			Tags: tags.Set{{Key: "__name__", Value: "m"}, {Key: "id", Value: fmt.Sprintf("s\"%d\\\n", i)}}, Values: vals})
	}
	return res
}

// TestPromEncoding checks the hand-written answers against encoding/json,
// on the serial and the parallel paths, several times in a row so that
// reused buffers of another size must not leak into an answer.
func TestPromEncoding(t *testing.T) {
	t.Parallel()
	withTimes := matrix(3, 4)
	withTimes.Times = [][]int64{{1, 2, 3, 4}, {1000, 2001, 3000, 4000}, {-1500, 0, 5, 6}}
	warned := matrix(2, 3)
	warned.Warnings = []string{"a \"warning\"", "another"}
	cases := []struct {
		name string
		res  *promql.Result
	}{
		{"empty", &promql.Result{Type: promql.TypeMatrix, Start: 0, Step: 1000}},
		{"scalar", &promql.Result{Type: promql.TypeScalar, Start: 4000, Scalar: []float64{2}}},
		{"small", matrix(3, 10)},
		{"parallel", matrix(101, 360)},
		{"parallel-uneven", matrix(5, parallelPoints/4)},
		{"times", withTimes},
		{"warnings", warned},
		{"odd-start", &promql.Result{Type: promql.TypeMatrix, Start: 1500, Step: 250, Points: 2,
			Series: []promql.Series{{Tags: tags.Set{{Key: "a", Value: "b"}}, Values: []float64{1.5, 2}}}}},
	}
	p := &promAPI{}
	for range 3 {
		for _, tc := range cases {
			rec := httptest.NewRecorder()
			p.writeResult(rec, tc.res)
			var got, want any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s: %v: %.300s", tc.name, err, rec.Body.Bytes())
			}
			if err := json.Unmarshal(wantPromJSON(tc.res), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: answer differs from encoding/json (-want +got):\n%s", tc.name, diff)
			}
			// A parted answer is streamed as its parts are ready, without a
			// length; any other carries its exact length.
			cl := rec.Header().Get("Content-Length")
			parted := len(tc.res.Series)*tc.res.Points >= parallelPoints
			if parted && cl != "" || !parted && cl != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("%s: Content-Length %q for %d bytes", tc.name, cl, rec.Body.Len())
			}
			if !bytes.HasSuffix(rec.Body.Bytes(), []byte("}\n")) {
				t.Errorf("%s: answer does not end with a newline", tc.name)
			}
		}
	}
}

// TestPromFloatFormat checks the value strings against strconv, which is
// what Prometheus uses.
func TestPromFloatFormat(t *testing.T) {
	t.Parallel()
	f := func(v float64, want string) {
		t.Helper()
		if got := string(appendPromFloat(nil, v)); got != want {
			t.Errorf("appendPromFloat(%v) = %s, want %s", v, got, want)
		}
	}
	f(math.NaN(), "NaN")
	f(math.Inf(1), "+Inf")
	f(math.Inf(-1), "-Inf")
	f(0, "0")
	f(math.Copysign(0, -1), "-0")
	f(-3, "-3")
	f(1e15, "1000000000000000")
	f(123456789012345, "123456789012345")
	f(0.1, "0.1")
	f(1e21, "1000000000000000000000")
	f(-2.5e-7, "-0.00000025")
}

// TestPromSeriesEncoding checks the series endpoint's hand-written answer
// against encoding/json: keys in Prometheus's order, name as __name__,
// escapes and invalid UTF-8.
func TestPromSeriesEncoding(t *testing.T) {
	t.Parallel()
	got := []tags.Set{
		tags.New("name", "cpu", "app", "a\"b", "zone", "z\n1", "Upper", "x"),
		tags.New("name", "bad\xffutf8", "_under", "<&>"),
		{},
	}
	for _, more := range []bool{false, true} {
		rec := httptest.NewRecorder()
		(&promAPI{}).writeSeries(rec, got, more)
		want := []map[string]string{}
		for _, ts := range got {
			m := map[string]string{}
			for _, tg := range ts {
				m[promql.PromKey(tg.Key)] = tg.Value
			}
			want = append(want, m)
		}
		env := struct {
			Status   string              `json:"status"`
			Data     []map[string]string `json:"data"`
			Warnings []string            `json:"warnings,omitempty"`
		}{Status: "success", Data: want}
		if more {
			env.Warnings = []string{"results truncated due to limit"}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(env); err != nil {
			t.Fatal(err)
		}
		// encoding/json writes map keys sorted, as Prometheus orders labels.
		if rec.Body.String() != buf.String() {
			t.Errorf("more=%v: got\n%s\nwant\n%s", more, rec.Body.String(), buf.String())
		}
	}
}

// TestGraphRows checks the graph API's rows of values, formatted in parts
// on several goroutines for a large graph, against the same rows
// formatted one after the other, several times so that reused buffers
// must not leak into an answer.
func TestGraphRows(t *testing.T) {
	t.Parallel()
	for _, size := range [][2]int{{3, 10}, {50, 1000}, {7, parallelPoints/7 + 3}} {
		nlines, n := size[0], size[1]
		lines := make([]query.Line, nlines)
		for j := range lines {
			lines[j].Values = make([]float64, n)
			for i := range n {
				lines[j].Values[i] = float64(i*nlines+j) / 7
			}
			lines[j].Values[j%n] = math.NaN()
			lines[j].Values[(j+1)%n] = math.Inf(-1)
		}
		var want []byte
		for i := range n {
			if i > 0 {
				want = append(want, ',')
			}
			want = append(want, '[')
			for j := range lines {
				if j > 0 {
					want = append(want, ',')
				}
				want = appendValue(want, lines[j].Values[i])
			}
			want = append(want, ']')
		}
		for range 3 {
			if got := appendRows([]byte("head"), lines, n); !bytes.Equal(got, append([]byte("head"), want...)) {
				t.Fatalf("%d lines × %d: rows differ from the serial ones:\n%.300s\nwant\n%.300s", nlines, n, got, want)
			}
		}
	}
}
