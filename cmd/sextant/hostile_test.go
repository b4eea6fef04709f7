package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// publishSeries posts n gauges named name, each with tag v = prefix+i.
func publishSeries(t *testing.T, base, name, prefix string, n int) {
	t.Helper()
	now := time.Now().UnixMilli()
	for lo := 0; lo < n; lo += 500 {
		var b strings.Builder
		fmt.Fprintf(&b, `{"tags":{"name":%q,"atlas.dstype":"gauge"},"metrics":[`, name)
		for i := lo; i < min(n, lo+500); i++ {
			if i > lo {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"tags":{"val":"%s%d"},"timestamp":%d,"value":1}`, prefix, i, now)
		}
		b.WriteString("]}")
		if code, body := do(t, "POST", base+"/api/v1/publish", b.String(), map[string]string{"Content-Type": "application/json"}); code != 200 {
			t.Fatalf("publish = %d %s", code, body)
		}
	}
}

// TestHostileQueriesBinary runs hostile queries against the real binary
// while ordinary requests go on (issue #17 items 1, 2 and 4):
//   - a backtracking regex over a thousand long values answers a 422 naming
//     the regex budget within about that budget (it used to run minutes past
//     the query timeout, and count timed-out values as "no match");
//   - meanwhile publishes that create series and small queries answer fast
//     (they used to wait behind the index lock);
//   - a :dup,:add chain answers a 400 naming max-expression-size at once on
//     the graph API and the expression helpers.
func TestHostileQueriesBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	b := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "1h")
	t.Cleanup(func() { b.cmd.Process.Kill(); b.cmd.Wait() })
	base := "http://" + b.addr
	publishSeries(t, base, "hostile", strings.Repeat("a", 28), 1000)
	publishSeries(t, base, "hostile", "b", 1)

	hostile := url.QueryEscape(`name,hostile,:eq,val,(?=a)(a+)+x|b0,:re,:and,:count`)
	var wg sync.WaitGroup
	var regexCode int
	var regexBody string
	var regexTook time.Duration
	wg.Go(func() {
		t0 := time.Now()
		regexCode, regexBody = do(t, "GET", base+"/api/v1/graph?format=json&s=e-5m&q="+hostile, "", nil)
		regexTook = time.Since(t0)
	})
	// While it runs: new series and small queries.
	var worst time.Duration
	for i := range 10 {
		t0 := time.Now()
		publishSeries(t, base, "fresh"+strconv.Itoa(i), "x", 1)
		code, _ := do(t, "GET", base+"/api/v1/graph?format=json&s=e-5m&q=name,fresh0,:eq,:sum", "", nil)
		if code != 200 {
			t.Errorf("small query during the regex = %d", code)
		}
		worst = max(worst, time.Since(t0))
	}
	wg.Wait()
	if worst > 2*time.Second {
		t.Errorf("a publish and a small query took %v while a regex query ran", worst)
	}
	var e struct{ Type, Message, Limit string }
	json.Unmarshal([]byte(regexBody), &e)
	if regexCode != 422 || !strings.Contains(e.Message, "max-regex-time-per-query") {
		t.Errorf("backtracking regex query = %d %s, want a 422 naming the regex budget", regexCode, regexBody)
	}
	if regexTook > 10*time.Second {
		t.Errorf("backtracking regex query took %v", regexTook)
	}

	// Item 7: a chart of a thousand lines stays within 4000 px a side.
	for _, layout := range []string{"canvas", "iw", "ih", "image"} {
		code, body := do(t, "GET", base+"/api/v1/graph?format=png&s=e-5m&w=4000&h=4000&layout="+layout+"&q=name,hostile,:eq", "", nil)
		cfg, err := png.DecodeConfig(strings.NewReader(body))
		if code != 200 || err != nil || cfg.Width > 4000 || cfg.Height > 4000 {
			t.Errorf("layout=%s chart of 1000 lines: %d, %dx%d, %v", layout, code, cfg.Width, cfg.Height, err)
		}
	}

	dup := url.QueryEscape("name,hostile,:eq,:sum" + strings.Repeat(",:dup,:add", 30))
	for _, path := range []string{"/api/v1/graph?format=json&q=", "/api/v1/expr?q=", "/api/v1/expr/debug?q=", "/api/v1/expr/normalize?q=", "/api/v1/expr/queries?q="} {
		t0 := time.Now()
		code, body := do(t, "GET", base+path+dup, "", nil)
		if code != 400 || !strings.Contains(body, "max-expression-size") || time.Since(t0) > 2*time.Second {
			t.Errorf("%s:dup,:add x30 = %d %.200s in %v, want a 400 naming max-expression-size at once", path, code, body, time.Since(t0))
		}
	}
}

// vmHWM returns the peak resident set of process pid in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Skip("no VmHWM")
	return 0
}

// TestWideRangeRSSBinary is issue #17 item 3 against the real binary: with
// one series stored, four concurrent queries from 1970 (s=0) and from 20
// years ago used to hold gigabytes; the process's peak RSS must stay small.
func TestWideRangeRSSBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	b := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "3h", "--step", "60s")
	t.Cleanup(func() { b.cmd.Process.Kill(); b.cmd.Wait() })
	base := "http://" + b.addr
	publishSeries(t, base, "wide", "x", 1)
	before := vmHWM(t, b.cmd.Process.Pid)
	var wg sync.WaitGroup
	for _, s := range []string{"0", "e-20y", "0", "e-20y"} {
		wg.Go(func() {
			code, body := do(t, "GET", base+"/api/v1/graph?format=json&q=name,wide,:eq,:max&s="+s, "", nil)
			if code != 200 || !strings.Contains(body, `"metrics"`) {
				t.Errorf("s=%s: %d %.200s", s, code, body)
			}
		})
	}
	wg.Wait()
	after := vmHWM(t, b.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB before the wide queries, %d MiB after", before>>10, after>>10)
	if after > before+200<<10 {
		t.Errorf("four wide-range queries of one series raised the peak RSS from %d to %d MiB", before>>10, after>>10)
	}
}
