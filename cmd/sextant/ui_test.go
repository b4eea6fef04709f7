package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/ui"
)

// TestUIServes checks the UI's HTTP face without a browser: / redirects,
// deep links get the app shell with a strict CSP, assets are gzipped, and
// the dashboards API answers.
func TestUIServes(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testConfig(t))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d Location %q, want 302 /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/", "/ui/explore?q=name,x,:eq", "/ui/dashboards/abc", "/ui/traces/0123abcd", "/ui/alerts/HighErrorRate"} {
		code, body := get(t, "http://"+addr+p)
		if code != 200 || !strings.Contains(body, `<script type="module" src="/ui/assets/app.js">`) {
			t.Errorf("GET %s = %d, want the app shell:\n%.200s", p, code, body)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/ui/assets/app.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("app.js headers = %v", resp.Header)
	}
	if code, _ := get(t, "http://"+addr+"/ui/assets/nope.js"); code != 404 {
		t.Errorf("missing asset = %d, want 404", code)
	}
	code, body := get(t, "http://"+addr+"/api/v1/dashboards")
	if code != 200 || strings.TrimSpace(body) != `{"dashboards":[]}` {
		t.Errorf("dashboards = %d %s", code, body)
	}
}

// TestUIBrowser drives the UI in headless Chromium against a real server
// filled with metrics (the publish API and lib's publisher) and OTLP
// traces: every page loads without a console error; Explore draws, shows
// an inline error and autocompletes; a trace opens from the search and
// shows a span's attributes; an exemplar leads to its trace; a span named
// like markup stays text; a dashboard survives a reload and a restart.
func TestUIBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	t.Parallel()
	b := newBrowser(t)
	cfg := testConfig(t)
	cfg.Listen = freeAddr(t) // the same address after the restart
	cfg.LiveDelay = 300 * time.Millisecond
	addr, stop := serveAt(t, cfg)
	base := "http://" + addr
	publishHistory(t, addr, 10)
	// lib's publisher sends a gauge every step, for the alert and live parts.
	reg := lib.NewRegistry(lib.RegistryOptions{})
	pub, err := lib.NewPublisher(reg, lib.PublisherOptions{URI: base + "/api/v1/publish", Step: time.Second, NoEnvTags: true,
		CommonTags: map[string]string{"nf.app": "uitest"}})
	if err != nil {
		t.Fatal(err)
	}
	reg.Gauge("ui.live", "region", "west").Set(42)
	pub.Start()
	t.Cleanup(func() { pub.Close(context.Background()) })
	now := time.Now()
	var ids []string
	for n := range 6 {
		name := fmt.Sprintf("GET /home/%d", n)
		if n == 5 {
			name = xssName
		}
		td, tid := uiTrace(n, now.Add(-time.Duration(6-n)*time.Second), name)
		sendTraces(t, addr, td)
		ids = append(ids, tid.String())
	}
	xssID := ids[5]
	// Span metrics and their exemplars are appended every second.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) { // poll interval of a bounded wait for span metrics to be flushed
		_, body := get(t, base+"/api/v1/exemplars?q=name,span.duration,:eq,service.name,db,:eq,:and,:max&s=e-5m")
		if strings.Count(body, `"traceID"`) >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exemplars for the test's traces: %s", body)
		}
	}

	// Each page loads with no console error.
	pages := []struct{ name, path, ready string }{
		{"explore", "/ui/explore?q=" + urlq("name,ui.requests,:eq,(,nf.app,),:by") + "&s=e-10m", `document.querySelector('#status').textContent.includes('3 lines')`},
		{"dashboards", "/ui/dashboards", `document.querySelector('#dashboards table, #dashboards p:not(.muted)') || document.querySelector('#dashboards').textContent.includes('No dashboards')`},
		{"traces", "/ui/traces?service=frontend&lookback=1h", `document.querySelectorAll('#trace-list tbody tr').length >= 6`},
		{"trace", "/ui/traces/" + ids[2], `document.querySelectorAll('.wf-row').length == 4`},
		{"cardinality", "/ui/cardinality", `document.querySelector('#cardinality') && document.querySelector('#cardinality').textContent.includes('ui.requests')`},
		{"status", "/ui/status", `document.querySelector('#metrics') && document.querySelector('#status-info').textContent.includes('DataDir')`},
	}
	alerting := false
	if code, _ := get(t, base+"/api/v1/alerting/rules"); code == 200 {
		alerting = true
		pages = append(pages, struct{ name, path, ready string }{"alerts", "/ui/alerts", `document.querySelector('#alerts-body table, #alerts-body p:not(.muted)') || document.querySelector('#alerts-body').textContent.includes('No rules')`})
	} else {
		t.Log("no alerting API on this branch: the alerts page is not loaded")
	}
	for _, p := range pages {
		b.takeConsole()
		b.run(t, "load "+p.name, chromedp.Navigate(base+p.path), waitJS(p.ready))
		b.screenshot(t, p.name)
		if c := b.takeConsole(); len(c) > 0 {
			t.Errorf("page %s wrote to the console: %q", p.name, c)
		}
	}

	// Cardinality drills down from names to a name's keys to a key's values.
	b.run(t, "cardinality", chromedp.Navigate(base+"/ui/cardinality"), waitJS(`document.querySelector('#cardinality')`),
		chromedp.Click(`//table[@id='cardinality']//a[text()='ui.requests']`, chromedp.BySearch),
		waitJS(`location.search == '?name=ui.requests' && document.querySelector('#cardinality').textContent.includes('nf.app')`),
		chromedp.Click(`//table[@id='cardinality']//a[text()='nf.app']`, chromedp.BySearch),
		waitJS(`location.search.includes('key=nf.app') && document.querySelectorAll('#cardinality tbody tr').length == 3 && document.querySelector('#cardinality').textContent.includes('www')`))

	// Explore drew the lines: pixels of the first line's color on the canvas.
	b.run(t, "load explore", chromedp.Navigate(base+"/ui/explore?q="+urlq("name,ui.requests,:eq,(,nf.app,),:by")+"&s=e-10m"),
		waitJS(`document.querySelector('#status').textContent.includes('3 lines')`))
	var px int
	b.run(t, "count line pixels", evalJS(`(() => {
		const c = document.querySelector('#chart-box canvas'), ch = c.sextantChart;
		const col = ch.series[0].color, r = parseInt(col.slice(1,3),16), g = parseInt(col.slice(3,5),16), bl = parseInt(col.slice(5,7),16);
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < d.length; i += 4) if (d[i+3] > 200 && Math.abs(d[i]-r) < 40 && Math.abs(d[i+1]-g) < 40 && Math.abs(d[i+2]-bl) < 40) n++;
		return n; })()`, &px))
	if px < 300 {
		t.Errorf("the first line has %d pixels on the canvas, want a line across the plot", px)
	}
	// A heatmap is drawn as cells counting the lines per row and step, not
	// as lines: its cells colour several times the pixels the same lines
	// drawn as strokes do.
	tinted := func(style string) (cells, px int) {
		b.run(t, "explore "+style, chromedp.Navigate(base+"/ui/explore?q="+urlq("name,ui.requests,:eq,(,nf.app,),:by,"+style+",:ls")+"&s=e-10m"),
			waitJS(`document.querySelector('#status').textContent.includes('3 lines')`))
		var got struct{ Cells, Px int }
		b.run(t, "tinted pixels", evalJS(`(() => {
			const c = document.querySelector('#chart-box canvas'), ch = c.sextantChart;
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			let px = 0;
			for (let i = 0; i < d.length; i += 4) if (d[i+3] > 0 && Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 30) px++;
			return {cells: ch.heatmapCells ? ch.heatmapCells[0] : 0, px}; })()`, &got))
		return got.Cells, got.Px
	}
	_, linePx := tinted("line")
	cells, heatPx := tinted("heatmap")
	b.screenshot(t, "explore-heatmap")
	if cells < 10 || heatPx < 2*linePx {
		t.Errorf("heatmap: %d cells and %d coloured pixels against %d for the lines; want cells, not strokes", cells, heatPx, linePx)
	}

	// A deep link with a time zone: the chart's times are in it.
	b.run(t, "explore tz", chromedp.Navigate(base+"/ui/explore?q="+urlq("name,ui.requests,:eq,(,nf.app,),:by")+"&s=e-10m&tz=Asia/Kolkata"),
		waitJS(`document.querySelector('#status').textContent.includes('3 lines')`))
	var tzLabel string
	b.run(t, "tz label", evalJS(`(() => { const c = document.querySelector('#chart-box canvas').sextantChart; return c.opts.tz; })()`, &tzLabel))
	if tzLabel != "Asia/Kolkata" {
		t.Errorf("chart time zone = %q", tzLabel)
	}
	b.run(t, "back to explore", chromedp.Navigate(base+"/ui/explore?q="+urlq("name,ui.requests,:eq,(,nf.app,),:by")+"&s=e-10m&tz=UTC"),
		waitJS(`document.querySelector('#status').textContent.includes('3 lines')`))

	// The dark theme, switched with the keyboard.
	var theme string
	b.run(t, "dark theme", chromedp.Click("h1", chromedp.ByQuery), chromedp.KeyEvent("t"), waitJS(`document.documentElement.dataset.theme == 'dark'`),
		evalJS(`document.documentElement.dataset.theme`, &theme))
	b.screenshot(t, "explore-dark")
	b.run(t, "light theme", chromedp.KeyEvent("t"), waitJS(`document.documentElement.dataset.theme == 'light'`))
	// Hovering shows every line's value at that step; dragging zooms in.
	var box struct{ X, Y, W, H float64 }
	b.run(t, "plot box", evalJS(`(() => { const c = document.querySelector('#chart-box canvas'), r = c.getBoundingClientRect(), p = c.sextantChart.plot;
		return {x: r.left + p.x, y: r.top + p.y, w: p.w, h: p.h}; })()`, &box))
	var readout, loc string
	b.run(t, "hover", chromedp.MouseEvent(input.MouseMoved, box.X+box.W/2, box.Y+box.H/2),
		waitJS(`!document.querySelector('.readout').hidden`), nodeText(".readout", &readout))
	b.screenshot(t, "explore-hover")
	b.run(t, "drag to zoom", chromedp.MouseEvent(input.MousePressed, box.X+box.W*0.3, box.Y+box.H/2, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		chromedp.MouseEvent(input.MouseMoved, box.X+box.W*0.5, box.Y+box.H/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.MouseMoved, box.X+box.W*0.6, box.Y+box.H/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.MouseReleased, box.X+box.W*0.6, box.Y+box.H/2, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		waitJS(`/[?&]s=\d+/.test(location.search) && /[?&]e=\d+/.test(location.search) && document.querySelector('#status').textContent.includes('3 lines')`),
		chromedp.Location(&loc))
	if want := time.Now().UTC().Format("2006-01-02"); !strings.Contains(readout, want) {
		t.Errorf("hover read-out %q lacks the UTC date %s", readout, want)
	}
	for _, app := range []string{"nf.app=www", "nf.app=api", "nf.app=db"} {
		if !strings.Contains(readout, app) {
			t.Errorf("hover read-out %q lacks %s", readout, app)
		}
	}
	var rows int
	b.run(t, "table view", chromedp.Click("#tab-table", chromedp.ByQuery), waitJS(`document.querySelectorAll('#values tbody tr').length > 100`),
		evalJS(`document.querySelectorAll('#values thead th').length`, &rows), chromedp.Click("#tab-chart", chromedp.ByQuery))
	if rows != 4 {
		t.Errorf("table view has %d columns, want time and 3 lines", rows)
	}
	var legend string
	b.run(t, "legend", nodeText("table.legend tbody", &legend))
	for _, app := range []string{"nf.app=www", "nf.app=api", "nf.app=db"} {
		if !strings.Contains(legend, app) {
			t.Errorf("legend %q lacks %s", legend, app)
		}
	}

	// A bad expression: the error names the word, marked where it is.
	var mark string
	b.run(t, "inline error", evalJS(`document.querySelector("#q").value = ""`, nil), chromedp.SendKeys("#q", "name,ui.requests,:eq,:summ", chromedp.ByQuery),
		waitJS(`!document.querySelector('#q-error').classList.contains('hidden')`), nodeText("#q-error mark", &mark))
	b.screenshot(t, "explore-error")
	if mark != ":summ" {
		t.Errorf("marked word = %q, want :summ", mark)
	}
	// Typing a bad expression is normal use: nothing in the console.
	b.run(t, "run the bad expression", chromedp.Click("#run", chromedp.ByQuery), waitJS(`location.search.includes('summ')`),
		waitJS(`document.querySelector('#status').textContent == '' && !document.querySelector('#q-error').classList.contains('hidden')`))
	if c := b.takeConsole(); len(c) > 0 {
		t.Errorf("a bad expression wrote to the console: %q", c)
	}

	// Autocomplete of a tag value, accepted with Tab.
	var q string
	b.run(t, "autocomplete", evalJS(`document.querySelector("#q").value = ""`, nil), chromedp.SendKeys("#q", "name,ui.requests,:eq,nf.app,w", chromedp.ByQuery),
		waitJS(`[...document.querySelectorAll('#q-complete li')].some(li => li.textContent.startsWith('www'))`))
	b.screenshot(t, "explore-complete")
	b.run(t, "accept completion", chromedp.SendKeys("#q", "\t", chromedp.ByQuery), chromedp.Value("#q", &q, chromedp.ByQuery))
	if q != "name,ui.requests,:eq,nf.app,www" {
		t.Errorf("after Tab the expression is %q", q)
	}
	// Typing through a bad word and an open list asks nothing that fails.
	b.run(t, "type more", chromedp.SendKeys("#q", ",:bogus,(,nf.app,),:by", chromedp.ByQuery), waitJS(`!document.querySelector('#q-error').classList.contains('hidden')`))
	if c := b.takeConsole(); len(c) > 0 {
		t.Errorf("typing wrote to the console: %q", c)
	}

	// A trace search opens a waterfall, then a span's attributes.
	b.run(t, "search traces", chromedp.Navigate(base+"/ui/traces?service=frontend&lookback=1h"),
		waitJS(`document.querySelectorAll('#trace-list tbody tr').length >= 6`),
		chromedp.Click(`//a[contains(@class,'trace-link') and contains(., 'GET /home/3')]`, chromedp.BySearch),
		waitJS(`location.pathname == '/ui/traces/`+ids[3]+`' && document.querySelectorAll('.wf-row').length == 4`),
		chromedp.Click(`//div[contains(@class,'wf-row')][.//span[text()='SELECT titles']]`, chromedp.BySearch),
		waitJS(`!document.querySelector('#details').hidden`))
	var details string
	b.run(t, "details", nodeText("#details", &details))
	b.screenshot(t, "trace-details")
	for _, want := range []string{"http.route", "/titles/db", "lock wait", "wait.ms", "FOLLOWS_FROM", "span.duration of db"} {
		if !strings.Contains(details, want) && !(want == "FOLLOWS_FROM" && strings.Contains(details, "Links (1)")) {
			t.Errorf("span details lack %q:\n%s", want, details)
		}
	}

	// Filter keeps only matching spans; find marks them; collapse folds.
	var nFilter, nCollapsed int
	var found string
	b.run(t, "filter and find", chromedp.SendKeys("#wf-filter", "cache", chromedp.ByQuery),
		waitJS(`document.querySelectorAll('.wf-row:not([hidden])').length == 1`),
		evalJS(`document.querySelectorAll('.wf-row:not([hidden])').length`, &nFilter),
		evalJS(`(() => { const f = document.querySelector('#wf-filter'); f.value = ''; f.dispatchEvent(new Event('input')); return true; })()`, nil),
		chromedp.SendKeys("#wf-find", "SELECT", chromedp.ByQuery), waitJS(`document.querySelector('.wf-row.found')`),
		nodeText("#wf-find-count", &found),
		chromedp.Click("#wf-collapse", chromedp.ByQuery), waitJS(`document.querySelectorAll('.wf-row:not([hidden])').length == 3`),
		evalJS(`document.querySelectorAll('.wf-row:not([hidden])').length`, &nCollapsed),
		chromedp.Click("#wf-expand", chromedp.ByQuery), chromedp.Click("#wf-crit", chromedp.ByQuery), waitJS(`document.querySelectorAll('.wf-bar.crit').length == 4`))
	if nFilter != 1 || found != "1 found" || nCollapsed != 3 {
		t.Errorf("filter shows %d rows, find says %q, collapsed shows %d rows", nFilter, found, nCollapsed)
	}
	b.run(t, "compare", chromedp.Navigate(base+"/ui/traces/compare?a="+ids[1]+"&b="+ids[4]),
		waitJS(`document.querySelectorAll('#compare-table tbody tr').length == 5`))
	b.screenshot(t, "compare")

	// The span named like markup renders as text.
	var opText string
	var imgs int
	b.run(t, "xss trace", chromedp.Navigate(base+"/ui/traces/"+xssID), waitJS(`document.querySelectorAll('.wf-row').length == 4`),
		evalJS(`[...document.querySelectorAll('.wf-op')].map(e => e.textContent).join('|')`, &opText),
		evalJS(`document.querySelectorAll('img').length`, &imgs))
	if !strings.Contains(opText, xssName) || imgs != 0 {
		t.Errorf("span names %q, %d img elements: the name was not text", opText, imgs)
	}
	if d := b.dialogs(); len(d) > 0 {
		t.Errorf("the page opened dialogs %q", d)
	}

	// An exemplar marker on the span latency chart leads to its trace.
	exq := "name,span.duration,:eq,service.name,db,:eq,:and,:max"
	b.run(t, "exemplars", chromedp.Navigate(base+"/ui/explore?q="+urlq(exq)+"&s=e-5m"),
		waitJS(`(document.querySelector('#chart-box canvas').sextantChart || {markers: []}).markers.length > 0`))
	b.screenshot(t, "explore-exemplars")
	var m struct {
		X, Y  float64
		Trace string
	}
	b.run(t, "marker position", evalJS(`(() => { const c = document.querySelector('#chart-box canvas'), r = c.getBoundingClientRect(), m = c.sextantChart.markers[0];
		return {x: r.left + m.x, y: r.top + m.y, trace: m.ex.traceID}; })()`, &m))
	b.run(t, "click marker", chromedp.MouseClickXY(m.X, m.Y), waitJS(`location.pathname == '/ui/traces/`+m.Trace+`' && document.querySelectorAll('.wf-row').length > 0`))
	if !slices.Contains(ids, m.Trace) {
		t.Errorf("exemplar trace %s is not one the test sent", m.Trace)
	}

	// The live toggle: the chart follows the stream and draws each new step.
	var liveStart, liveNext float64
	b.run(t, "live", chromedp.Navigate(base+"/ui/explore?q="+urlq("name,ui.live,:eq,:sum")+"&s=e-5m"),
		waitJS(`document.querySelector('#status').textContent.includes('1 lines')`), chromedp.Click("#live", chromedp.ByQuery),
		waitJS(`document.querySelector('#status').textContent.startsWith('Live: 1 lines')`),
		evalJS(`document.querySelector('#chart-box canvas').sextantChart.end`, &liveStart))
	b.run(t, "live step", waitJS(`(() => { const c = document.querySelector('#chart-box canvas').sextantChart, v = c.series[0].values;
			return c.end > `+fmt.Sprint(liveStart)+` && v[v.length - 1] === 42; })()`),
		evalJS(`document.querySelector('#chart-box canvas').sextantChart.end`, &liveNext))
	b.screenshot(t, "explore-live")
	if liveNext <= liveStart || !strings.Contains(mustLocation(t, b), "live=1") {
		t.Errorf("live chart ended at %v then %v", liveStart, liveNext)
	}
	if c := b.takeConsole(); len(c) > 0 {
		t.Errorf("live Explore wrote to the console: %q", c)
	}

	// A silence is created from a firing alert, after its preview.
	if alerting {
		req, _ := http.NewRequest("PUT", base+"/api/v1/alerting/rules/ui", strings.NewReader(
			`{"name":"ui","rules":[{"alert":"UILiveUp","expr":"name,ui.live,:eq,(,region,),:by,0,:gt","labels":{"severity":"page"}}]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT rule group = %d", resp.StatusCode)
		}
		b.run(t, "firing alert", chromedp.Navigate(base+"/ui/alerts?tab=alerts"),
			chromedp.Poll(`(() => { const r = document.querySelector('#alert-list .silence-btn'); if (!r) document.querySelector('#tab-alerts')?.click(); return !!r && document.querySelector('#alert-list').textContent.includes('firing'); })()`,
				nil, chromedp.WithPollingInterval(time.Second)))
		b.screenshot(t, "alerts")
		b.run(t, "silence", chromedp.Click("#alert-list .silence-btn", chromedp.ByQuery), waitJS(`document.querySelector('#silence-matchers')`),
			chromedp.SendKeys("#silence-by", "ui-test", chromedp.ByQuery), chromedp.SendKeys("#silence-comment", "checking the UI", chromedp.ByQuery),
			chromedp.Click("#silence-preview", chromedp.ByQuery), waitJS(`document.querySelector('#silence-affected').textContent.includes('1 alerts would be silenced')`))
		b.screenshot(t, "silence-preview")
		b.run(t, "create silence", chromedp.Click("#silence-create", chromedp.ByQuery), waitJS(`document.querySelector('#silences tbody tr')`))
		b.screenshot(t, "silences")
		b.run(t, "alert tabs", chromedp.Click("#tab-history", chromedp.ByQuery), waitJS(`document.querySelector('#history') && document.querySelector('#history').textContent.includes('firing')`),
			chromedp.Click("#tab-notifications", chromedp.ByQuery), waitJS(`document.querySelector('#notifications') || document.querySelector('#alerts-body').textContent.includes('No notifications')`),
			chromedp.Click("#tab-rules", chromedp.ByQuery), waitJS(`document.querySelector('#rules') && document.querySelector('#rules').textContent.includes('UILiveUp')`))
		code, body := get(t, base+"/api/v1/alerting/silences")
		if code != 200 || !strings.Contains(body, `"createdBy":"ui-test"`) || !strings.Contains(body, `"name":"alertname","value":"UILiveUp"`) {
			t.Errorf("silences = %d %s", code, body)
		}
		// The rule's page: its signal and firing intervals, and a backtest.
		b.run(t, "rule page", chromedp.Navigate(base+"/ui/alerts/UILiveUp?s=e-5m"), waitJS(`document.querySelector('#rule-chart canvas').sextantChart.series.length >= 1`),
			chromedp.Click("#backtest", chromedp.ByQuery), waitJS(`document.querySelector('#backtest-out').textContent.includes('Backtest:')`))
		b.screenshot(t, "alert-rule")
		if c := b.takeConsole(); len(c) > 0 {
			t.Errorf("alert pages wrote to the console: %q", c)
		}
	}

	// A dashboard's variable is filled from tag values and narrows its panels.
	req, _ := http.NewRequest("PUT", base+"/api/v1/dashboards/vars", strings.NewReader(`{"title":"Vars",
		"variables":[{"name":"app","key":"nf.app","query":"name,ui.requests,:eq"}],
		"panels":[{"title":"by app","q":"name,ui.requests,:eq,nf.app,$app,:eq,:and,(,nf.app,),:by","s":"","e":"","step":"","type":"stack","w":12,"h":4}]}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT dashboard: %v %v", resp, err)
	}
	var varLegend, exportHref string
	b.run(t, "variables", chromedp.Navigate(base+"/ui/dashboards/vars?live=0"),
		waitJS(`document.querySelectorAll('#var-app option').length == 4 && document.querySelectorAll('.panel table.legend tbody tr').length == 3`),
		chromedp.SetValue("#var-app", "www", chromedp.ByQuery),
		evalJS(`document.querySelector('#var-app').dispatchEvent(new Event('change')), true`, nil),
		waitJS(`location.search.includes('var-app=www') && document.querySelectorAll('.panel table.legend tbody tr').length == 1`),
		nodeText(".panel table.legend tbody", &varLegend), chromedp.AttributeValue("#export", "href", &exportHref, nil, chromedp.ByQuery))
	b.screenshot(t, "dashboard-variables")
	if !strings.Contains(varLegend, "nf.app=www") || !strings.HasPrefix(exportHref, "blob:") {
		t.Errorf("with app=www the panel shows %q; export link %q", varLegend, exportHref)
	}
	// Import a dashboard from a JSON file, as Export writes it.
	imp := filepath.Join(t.TempDir(), "imported.json")
	if err := os.WriteFile(imp, []byte(`{"id":"imported","title":"Imported","variables":[],"panels":[{"title":"all","q":"name,ui.requests,:eq,:sum","s":"","e":"","step":"","type":"line","w":6,"h":4}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b.run(t, "import", chromedp.Navigate(base+"/ui/dashboards"), waitJS(`document.querySelector('#import-file')`),
		chromedp.SetUploadFiles("#import-file", []string{imp}, chromedp.ByQuery),
		waitJS(`location.pathname == '/ui/dashboards/imported' && document.querySelector('#dash-title').textContent == 'Imported' && document.querySelector('.panel canvas')`))
	// Attribute filters with a regex in the trace search.
	b.run(t, "regex search", chromedp.Navigate(base+"/ui/traces?service=frontend&lookback=1h&tagsRegex="+url.QueryEscape(`{"trace.n":"[34]"}`)),
		waitJS(`document.querySelectorAll('#trace-list tbody tr').length == 2 && document.querySelector('#tags').value == 'trace.n=~[34]'`))

	// A dashboard is created, reloaded, and still there after a restart.
	b.run(t, "create dashboard", chromedp.Navigate(base+"/ui/dashboards"), waitJS(`document.querySelector('#new-title')`),
		chromedp.SendKeys("#new-title", "Checkout health", chromedp.ByQuery), chromedp.Click("#new-dashboard button", chromedp.ByQuery),
		waitJS(`location.pathname.startsWith('/ui/dashboards/checkout-health-') && document.querySelector('#add-panel')`),
		chromedp.Click("#add-panel", chromedp.ByQuery), waitJS(`document.querySelector('#panel-q-0')`),
		chromedp.SendKeys("#panel-q-0", "name,ui.requests,:eq,:sum", chromedp.ByQuery),
		evalJS(`document.querySelector(".panel-title").value = "Requests"`, nil),
		evalJS(`document.querySelector('.panel-title').dispatchEvent(new Event('change')), document.querySelector('#panel-q-0').dispatchEvent(new Event('change')), true`, nil),
		chromedp.Click("#save", chromedp.ByQuery), waitJS(`document.querySelector('#saved')`))
	var dashURL string
	b.run(t, "location", chromedp.Location(&dashURL))
	dashURL = strings.Replace(dashURL, "?edit=1", "", 1) // live, as by default
	reload := func(what string) {
		t.Helper()
		b.run(t, what, chromedp.Navigate(dashURL), waitJS(`document.querySelector('#dash-title').textContent == 'Checkout health' && document.querySelector('.panel h3').textContent == 'Requests' && document.querySelector('.panel canvas')`))
	}
	b.takeConsole()
	reload("reload dashboard")
	b.screenshot(t, "dashboard")
	if c := b.takeConsole(); len(c) > 0 {
		t.Errorf("the live dashboard wrote to the console: %q", c)
	}
	stop()
	addr2, _ := serveAt(t, cfg)
	if addr2 != addr {
		t.Fatalf("restarted on %s, not %s", addr2, addr)
	}
	reload("dashboard after restart")
	code, body := get(t, base+"/api/v1/dashboards")
	var list struct{ Dashboards []struct{ ID, Title string } }
	if json.Unmarshal([]byte(body), &list); code != 200 || len(list.Dashboards) != 3 || list.Dashboards[0].Title != "Checkout health" {
		t.Errorf("dashboards after restart = %d %s", code, body)
	}
}

func mustLocation(t *testing.T, b *browser) string {
	t.Helper()
	var loc string
	b.run(t, "location", chromedp.Location(&loc))
	return loc
}

func urlq(q string) string {
	return strings.NewReplacer(",", "%2C", ":", "%3A", "(", "%28", ")", "%29", " ", "%20").Replace(q)
}

// TestUIToken puts a bearer-token check (as --auth-token does) in front
// of a real server: the page loads, asks for the token once, keeps it for
// the tab and sends it on every API call.
func TestUIToken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	t.Parallel()
	b := newBrowser(t)
	addr := startServe(t, testConfig(t))
	target, _ := url.Parse("http://" + addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var authorized, refused atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ui.Public(r) && r.Header.Get("Authorization") != "Bearer s3cret" {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer realm="sextant"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"type":"error","message":"authorization required"}`)
			return
		}
		if !ui.Public(r) {
			authorized.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	var stored string
	b.run(t, "token prompt", chromedp.Navigate(front.URL+"/ui/dashboards"), waitJS(`document.querySelector('#token-dialog[open]')`),
		chromedp.SendKeys("#token-input", "s3cret\n", chromedp.ByQuery),
		waitJS(`document.querySelector('#dashboards').textContent.includes('No dashboards yet')`),
		evalJS(`sessionStorage.getItem('sextant.token')`, &stored))
	b.screenshot(t, "token")
	before := refused.Load()
	b.run(t, "token kept", chromedp.Navigate(front.URL+"/ui/explore?q="+urlq("name,sextant.ui.requests,:eq,:sum")+"&s=e-5m"),
		waitJS(`document.querySelector('#status').textContent.includes('lines')`))
	if stored != "s3cret" || refused.Load() != before || authorized.Load() < 2 {
		t.Errorf("token %q kept; %d refused after it was given, %d authorized calls", stored, refused.Load()-before, authorized.Load())
	}
}

// TestStatusInfoHidesSecrets: the status page shows plain settings, never
// tokens or nested configuration (receivers' URLs and keys).
func TestStatusInfoHidesSecrets(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	info := statusInfo(cfg, time.Now())
	settings := info["settings"].(map[string]string)
	if settings["DataDir"] != cfg.DataDir || settings["Step"] != "1s" {
		t.Errorf("settings = %v", settings)
	}
	for k := range settings {
		if secretField(k) || k == "Alerting" {
			t.Errorf("status shows %s", k)
		}
	}
}
