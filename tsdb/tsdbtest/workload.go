package tsdbtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Workload is the standard benchmark workload of ../shared/tools/tsload:
// Series[i] has Values[i][t] at Start + t*Interval. Counters carry their
// cumulative value and atlas.dstype=counter, everything else
// atlas.dstype=gauge, as tsload's Atlas output does.
type Workload struct {
	Series   []tags.Set
	Values   [][]float64
	Start    int64 // ms
	Interval int64 // ms
}

// Samples returns the number of samples per series.
func (w *Workload) Samples() int {
	if len(w.Values) == 0 {
		return 0
	}
	return len(w.Values[0])
}

// Batch fills b with the datapoints of samples [t, t+1) for series
// [from, to), time-major as tsload sends them. Refs, when non-nil, are used
// instead of tags.
func (w *Workload) Batch(b *tsdb.Batch, t, from, to int, refs []tsdb.SeriesRef) {
	ts := w.Start + int64(t)*w.Interval
	for i := from; i < to; i++ {
		p := tsdb.Datapoint{T: ts, V: w.Values[i][t]}
		if refs != nil && refs[i] != 0 {
			p.Ref = refs[i]
		} else {
			p.Tags = w.Series[i]
		}
		b.Points = append(b.Points, p)
	}
}

// BenchSize is the size of benchmark workloads: 100 000 series × 360
// samples at 60 s (6 h), as docs/benchmarks.md reports, unless
// SEXTANT_BENCH_SERIES and SEXTANT_BENCH_SAMPLES shrink it for smoke runs.
func BenchSize() (series, samples int) {
	series, samples = 100_000, 360
	if v, err := strconv.Atoi(os.Getenv("SEXTANT_BENCH_SERIES")); err == nil && v > 0 {
		series = v
	}
	if v, err := strconv.Atoi(os.Getenv("SEXTANT_BENCH_SAMPLES")); err == nil && v > 0 {
		samples = v
	}
	return series, samples
}

// LoadTsload returns the tsload workload of n series × samples at 60 s
// starting at start (ms), generating it with the tool on first use and
// caching the file in the temp directory. It skips tb when the tool is not
// next to the repository (../shared/tools/tsload).
func LoadTsload(tb testing.TB, n, samples int, start int64) *Workload {
	tb.Helper()
	tool := findTsload()
	if tool == "" {
		tb.Skip("../shared/tools/tsload not found")
	}
	file := filepath.Join(os.TempDir(), fmt.Sprintf("sextant-tsload-%d-%d-%d.jsonl", n, samples, start))
	if _, err := os.Stat(file); err != nil {
		tmp := file + ".tmp"
		cmd := exec.Command("go", "run", ".", "gen", "-format", "vmjson", "-series", fmt.Sprint(n),
			"-samples", fmt.Sprint(samples), "-start-ms", fmt.Sprint(start), "-o", tmp)
		cmd.Dir = tool
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("tsload gen: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, file); err != nil {
			tb.Fatal(err)
		}
	}
	w, err := readVMJSON(file)
	if err != nil {
		tb.Fatalf("read %s: %v", file, err)
	}
	return w
}

// findTsload looks for shared/tools/tsload beside the module root.
func findTsload() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			tool := filepath.Join(dir, "..", "shared", "tools", "tsload")
			if _, err := os.Stat(filepath.Join(tool, "go.mod")); err == nil {
				return tool
			}
			return ""
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// readVMJSON reads tsload's series-major JSON lines.
func readVMJSON(file string) (*Workload, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := &Workload{}
	intern := map[string]string{}
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		intern[s] = s
		return s
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, err
		}
		ts := make(tags.Set, 0, len(line.Metric)+1)
		for k, v := range line.Metric {
			if k == "__name__" {
				k = tags.NameKey
			}
			ts = append(ts, tags.Tag{Key: in(k), Value: in(v)})
		}
		dst := "gauge"
		if strings.Contains(line.Metric["__name__"], "_counter_") {
			dst = "counter"
		}
		ts = append(ts, tags.Tag{Key: tsdb.DSTypeKey, Value: in(dst)}).Normalize()
		if len(w.Series) == 0 && len(line.Timestamps) > 0 {
			w.Start = line.Timestamps[0]
			if len(line.Timestamps) > 1 {
				w.Interval = line.Timestamps[1] - line.Timestamps[0]
			}
		}
		w.Series = append(w.Series, ts)
		w.Values = append(w.Values, slices.Clip(line.Values))
	}
	return w, sc.Err()
}

// TsloadAtlasBody returns one Atlas publish body of n datapoints from
// tsload (its first batch), generating and caching it on first use. It
// skips tb when the tool is not next to the repository.
func TsloadAtlasBody(tb testing.TB, n int) []byte {
	tb.Helper()
	tool := findTsload()
	if tool == "" {
		tb.Skip("../shared/tools/tsload not found")
	}
	file := filepath.Join(os.TempDir(), fmt.Sprintf("sextant-tsload-atlas-%d.json", n))
	if _, err := os.Stat(file); err != nil {
		tmp := file + ".tmp"
		cmd := exec.Command("go", "run", ".", "gen", "-format", "atlas", "-series", fmt.Sprint(n),
			"-samples", "1", "-batch", fmt.Sprint(n), "-start-ms", "1700006400000", "-o", tmp)
		cmd.Dir = tool
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("tsload gen: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, file); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	if i := strings.IndexByte(string(b), '\n'); i >= 0 {
		b = b[:i]
	}
	return b
}
