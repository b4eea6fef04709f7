package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLateWritesSurviveKill: the real binary, senders around a block
// boundary (1 s steps: blocks of two minutes). One sender's datapoints of
// the new period come first; the others' of the period that ended are
// then late writes, which go to late blocks: no sealed block is encoded
// again (sextant_tsdb_blocksReencoded_total stays 0), the values read
// right at once, and again after kill -9 and a restart (the late blocks
// come back from the WAL).
func TestLateWritesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	b := startBinary(t, bin, dir)
	const block = 120_000
	bnd := time.Now().UnixMilli()/block*block - block // a boundary in the past
	const series = 20
	want := map[string]map[int64]float64{}
	publish := func(name string, from, to int64, value func(i int, s int64) float64) {
		t.Helper()
		var ms []string
		for s := from; s < to; s += 1000 {
			for i := range series {
				v := value(i, s)
				ms = append(ms, fmt.Sprintf(`{"tags":{"name":%q,"ii":"%d","atlas.dstype":"gauge"},"timestamp":%d,"value":%v}`, name, i, s, v))
				key := fmt.Sprintf("%s/%d", name, i)
				if want[key] == nil {
					want[key] = map[int64]float64{}
				}
				want[key][s] = max(want[key][s], v)
			}
		}
		resp, err := http.Post("http://"+b.addr+"/api/v1/publish", "application/json",
			strings.NewReader(`{"metrics":[`+strings.Join(ms, ",")+`]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("publish %s [%d, %d): %d %s", name, from, to, resp.StatusCode, body)
		}
	}
	// The period up to the boundary, less its last ten seconds.
	publish("late.g", bnd-60_000, bnd-10_000, func(i int, s int64) float64 { return float64(i) })
	// One sender runs ahead: the next period.
	publish("late.g", bnd, bnd+10_000, func(i int, s int64) float64 { return float64(100 + i) })
	// The others, late: the last seconds of the period that ended, each
	// second twice, out of order.
	publish("late.g", bnd-5_000, bnd, func(i int, s int64) float64 { return float64(200 + i) })
	publish("late.g", bnd-10_000, bnd, func(i int, s int64) float64 { return float64(300 + i) })
	publish("late.g", bnd-10_000, bnd-5_000, func(i int, s int64) float64 { return float64(50 + i) })
	meters := func() (late, reencoded float64) {
		_, body := get(t, "http://"+b.addr+"/metrics")
		return metricValue(body, "sextant_tsdb_lateWrites_total"), metricValue(body, "sextant_tsdb_blocksReencoded_total")
	}
	late, reencoded := meters()
	if late < series*20 || reencoded != 0 {
		t.Errorf("late writes %v, re-encoded blocks %v: want at least %d, 0", late, reencoded, series*20)
	}
	check := func(when string) {
		t.Helper()
		s, e := time.UnixMilli(bnd-60_000), time.UnixMilli(bnd+10_000)
		for i := range series {
			got := first(graph(t, b.addr, fmt.Sprintf("name,late.g,:eq,ii,%d,:eq,:and", i), s, e))
			w := want[fmt.Sprintf("late.g/%d", i)]
			for k, v := range got {
				// A graph's value of time T is the step (T, T+1s], stored
				// at its end.
				step := s.UnixMilli() + int64(k+1)*1000
				if wv, ok := w[step]; ok && v != wv || !ok && !math.IsNaN(v) {
					t.Fatalf("%s: series %d at %d = %v, want %v (present %v)", when, i, step-bnd, v, wv, ok)
				}
			}
		}
	}
	check("after the late writes")
	// kill -9: the late blocks were only in memory and the WAL.
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
	b = startBinary(t, bin, dir)
	defer func() { b.cmd.Process.Signal(syscall.SIGTERM); b.cmd.Wait() }()
	check("after kill -9 and a restart")
}
