package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// gen writes the workload to a file or stdout.
func gen(args []string, stdout, stderr io.Writer, now func() time.Time) (err error) {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var wf workloadFlags
	wf.register(fs)
	format := fs.String("format", "atlas", "output format: atlas (publish bodies, one a line) or jsonl (one series a line)")
	batch := fs.Int("batch", 10_000, "datapoints per publish body (atlas)")
	out := fs.String("o", "-", "output file (- for stdout)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if *format != "atlas" && *format != "jsonl" {
		return usageError{fmt.Errorf("-format %q: want atlas or jsonl", *format)}
	}
	if *batch <= 0 {
		return usageError{fmt.Errorf("-batch %d must be positive", *batch)}
	}
	w, err := wf.workload(now)
	if err != nil {
		return err
	}
	dst := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		dst = f
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	if *format == "atlas" {
		for _, b := range bodies(w, *batch) {
			bw.Write(b)
			bw.WriteByte('\n')
		}
	} else {
		var line []byte
		for i := range w.Series {
			line = appendSeriesJSON(line[:0], w, i)
			bw.Write(line)
		}
	}
	return bw.Flush()
}

// appendSeriesJSON appends series i as one JSON line:
// {"tags":{...},"timestamps":[...],"values":[...]}, without its absent
// samples.
func appendSeriesJSON(dst []byte, w *tsdbtest.Workload, i int) []byte {
	dst = append(dst, `{"tags":{`...)
	for j, t := range w.Series[i] {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendQuote(dst, t.Key)
		dst = append(dst, ':')
		dst = strconv.AppendQuote(dst, t.Value)
	}
	dst = append(dst, `},"timestamps":[`...)
	first := true
	for t, v := range w.Values[i] {
		if math.IsNaN(v) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = strconv.AppendInt(dst, w.Start+int64(t)*w.Interval, 10)
	}
	dst = append(dst, `],"values":[`...)
	first = true
	for _, v := range w.Values[i] {
		if math.IsNaN(v) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
	}
	return append(dst, "]}\n"...)
}
