package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// xssName is a span name that must show as text, never as markup.
const xssName = `<img src=x onerror=alert(1)>`

// chromiumPath finds a Chromium or Chrome binary.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium tab driven by chromedp, with what the
// page wrote to its console and any dialog it opened.
type browser struct {
	ctx context.Context
	mu  struct {
		sync.Mutex
		console []string
		dialogs []string
	}
}

// newBrowser starts headless Chromium. Without a binary the test skips,
// unless CI is set: there browser tests must run.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") == "" {
			t.Skip("no chromium binary on PATH (apt-get install chromium): browser tests skipped; in CI they run")
		}
		t.Fatal("CI is set and no chromium binary is on PATH")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.mu.console = append(b.mu.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		case *runtime.EventExceptionThrown:
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			b.mu.console = append(b.mu.console, "exception: "+msg)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError || ev.Entry.Level == cdplog.LevelWarning {
				b.mu.console = append(b.mu.console, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		case *page.EventJavascriptDialogOpening:
			b.mu.dialogs = append(b.mu.dialogs, ev.Message)
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(false))
		}
	})
	if err := chromedp.Run(ctx, cdplog.Enable(), runtime.Enable()); err != nil {
		cancelC()
		cancelA()
		t.Fatalf("start chromium %s: %v", path, err)
	}
	t.Cleanup(func() { cancelC(); cancelA() })
	return b
}

// takeConsole returns and forgets what the console received.
func (b *browser) takeConsole() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.mu.console
	b.mu.console = nil
	return c
}

func (b *browser) dialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.mu.dialogs...)
}

// run runs actions with a deadline.
func (b *browser) run(t testing.TB, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var loc string
		_ = chromedp.Run(b.ctx, chromedp.Location(&loc))
		b.screenshot(t, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("%s (at %s): %v\nconsole: %q", what, loc, err, b.takeConsole())
	}
}

// eval evaluates js (awaiting a promise) into out.
func evalJS(js string, out any) chromedp.Action {
	return chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })
}

// artifactsDir is where screenshots go: $SEXTANT_ARTIFACTS, or artifacts/
// at the repository root.
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SEXTANT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the viewport as a PNG test artifact.
func (b *browser) screenshot(t testing.TB, name string) {
	t.Helper()
	var buf []byte
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&buf)); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(artifactsDir(t), "ui-"+name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Errorf("write %s: %v", p, err)
	}
}

// publishHistory publishes gauges ui.requests{nf.app=www|api|db} for every
// second of the last minutes.
func publishHistory(t testing.TB, addr string, minutes int) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	var b strings.Builder
	b.WriteString(`{"tags":{"atlas.dstype":"gauge","name":"ui.requests"},"metrics":[`)
	first := true
	for i := minutes * 60; i >= 0; i-- {
		ts := now.Add(-time.Duration(i) * time.Second).UnixMilli()
		for k, app := range []string{"www", "api", "db"} {
			if !first {
				b.WriteByte(',')
			}
			first = false
			v := 50 + 40*math.Sin(float64(i)/60+float64(k)) + float64(k*30)
			fmt.Fprintf(&b, `{"tags":{"nf.app":%q},"timestamp":%d,"value":%.3f}`, app, ts, v)
		}
	}
	b.WriteString("]}")
	postOK(t, "http://"+addr+"/api/v1/publish", "application/json", []byte(b.String()))
}

func postOK(t testing.TB, url, ctype string, body []byte) {
	t.Helper()
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, msg)
	}
}

// uiTrace is one trace of the test: frontend → catalog → db, with
// attributes, an event and a link, and a span of the given name.
func uiTrace(n int, end time.Time, name string) (ptrace.Traces, pcommon.TraceID) {
	td := ptrace.NewTraces()
	tid := pcommon.TraceID{0x0b, 0x5e, 14: byte(n >> 8), 15: byte(n)}
	sid := func(i int) pcommon.SpanID { return pcommon.SpanID{0x5a, byte(n), 7: byte(i + 1)} }
	start := end.Add(-time.Duration(100+20*n) * time.Millisecond)
	ts := func(ms int) pcommon.Timestamp {
		return pcommon.NewTimestampFromTime(start.Add(time.Duration(ms) * time.Millisecond))
	}
	type sp struct {
		svc, name    string
		parent       int
		from, to, id int
	}
	dur := 100 + 20*n
	spans := []sp{
		{"frontend", name, -1, 0, dur, 0},
		{"catalog", "GET /titles", 0, 5, dur - 10, 1},
		{"db", "SELECT titles", 1, 10, dur - 30, 2},
		{"catalog", "cache.get", 0, 2, 4, 3},
	}
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.svc)
		rs.Resource().Attributes().PutStr("host.name", "test-host")
		x := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		x.SetTraceID(tid)
		x.SetSpanID(sid(s.id))
		if s.parent >= 0 {
			x.SetParentSpanID(sid(s.parent))
		}
		x.SetName(s.name)
		x.SetKind(ptrace.SpanKindServer)
		x.SetStartTimestamp(ts(s.from))
		x.SetEndTimestamp(ts(s.to))
		x.Attributes().PutStr("http.route", "/titles/"+s.svc)
		x.Attributes().PutInt("trace.n", int64(n))
		if s.id == 2 {
			ev := x.Events().AppendEmpty()
			ev.SetName("lock wait")
			ev.SetTimestamp(ts(20))
			ev.Attributes().PutInt("wait.ms", 8)
			l := x.Links().AppendEmpty()
			l.SetTraceID(pcommon.TraceID{0x0b, 0x5e, 15: 0xff})
			l.SetSpanID(pcommon.SpanID{7: 9})
		}
	}
	return td, tid
}

// sendTraces posts traces over OTLP/HTTP protobuf.
func sendTraces(t testing.TB, addr string, td ptrace.Traces) {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	postOK(t, "http://"+addr+"/v1/traces", "application/x-protobuf", b)
}

// waitJS polls cond (a JS expression) until it is true.
func waitJS(js string) chromedp.Action {
	return chromedp.Poll("(() => { try { return !!("+js+") } catch (e) { return false } })()", nil, chromedp.WithPollingInterval(50*time.Millisecond))
}

func nodeText(sel string, out *string) chromedp.Action {
	return chromedp.Text(sel, out, chromedp.ByQuery)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
