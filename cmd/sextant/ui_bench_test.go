package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// BenchmarkUIBrowser measures the web UI in headless Chromium against a
// real in-process server, and reports figures rather than a pass/fail:
//
//   - explore-draw-ms: Explore drawing 100 lines × 1 440 points on its
//     canvas (the median of 10 redraws, after the data is loaded from the
//     graph API);
//   - waterfall-ready-ms: a 50 000-span trace (Jaeger JSON generated in the
//     page: ingest caps a trace at 10 000 spans) parsed, laid out and its
//     visible rows drawn;
//   - scroll-fps / scroll-frame-p95-ms: scrolling that waterfall, 200 px a
//     frame for 120 frames;
//   - idle-raf-fps: frames per second of the same page doing nothing, the
//     ceiling of scroll-fps on this machine;
//   - first-load-KB: bytes transferred (gzip) by the first load of
//     /ui/explore with an empty cache, document and every asset.
//
// SEXTANT_BENCH_UI_SPANS changes the trace size.
func BenchmarkUIBrowser(b *testing.B) {
	br := newBrowser(b)
	cfg, err := loadConfig([]string{"--listen", "127.0.0.1:0", "--data-dir", b.TempDir(), "--step", "1s", "--memory-retention", "1h",
		"--otlp-http-listen", "", "--otlp-grpc-listen", "", "--zipkin-listen", "", "--spectatord-listen", ""}, env(), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	addr := startServeTB(b, cfg)
	base := "http://" + addr
	// 100 gauges × 1 440 one-second steps.
	now := time.Now().Truncate(time.Second)
	for part := 0; part < 4; part++ {
		var sb strings.Builder
		sb.WriteString(`{"tags":{"atlas.dstype":"gauge","name":"ui.bench"},"metrics":[`)
		for i := 0; i < 360; i++ {
			ts := now.Add(-time.Duration(part*360+i) * time.Second).UnixMilli()
			for id := 0; id < 100; id++ {
				if i+id > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `{"tags":{"id":"%d"},"timestamp":%d,"value":%d}`, id, ts, (id*7+i*13+part)%97+id)
			}
		}
		sb.WriteString("]}")
		postOK(b, base+"/api/v1/publish", "application/json", []byte(sb.String()))
	}
	spans := 50_000
	if v, err := strconv.Atoi(os.Getenv("SEXTANT_BENCH_UI_SPANS")); err == nil && v > 0 {
		spans = v
	}
	var firstKB, drawMs float64
	var ready struct{ Ready, Parse, Build, Render float64 }
	var scroll struct{ FPS, P95, Paint float64 }
	var idleFPS float64
	var points int
	for b.Loop() {
		// First load with an empty cache: what a newcomer's browser fetches.
		br.run(b, "cold load", network.Enable(), network.SetCacheDisabled(true), chromedp.Navigate(base+"/ui/explore"),
			waitJS(`document.querySelector('#status') && document.readyState == 'complete'`),
			evalJS(`new Promise(r => setTimeout(r, 300)).then(() => performance.getEntries().filter(e => e.transferSize !== undefined).reduce((s, e) => s + e.transferSize, 0) / 1024)`, &firstKB),
			network.SetCacheDisabled(false))
		q := "name,ui.bench,:eq,(,id,),:by"
		br.run(b, "explore 100 lines", chromedp.Navigate(base+"/ui/explore?q="+urlq(q)+"&s=e-1440s&step=1s&w=2000"),
			waitJS(`document.querySelector('#status').textContent.includes('100 lines')`),
			evalJS(`(() => { const c = document.querySelector('#chart-box canvas').sextantChart, t = [];
				for (let i = 0; i < 10; i++) { c.draw(); t.push(c.lastDrawMs); }
				t.sort((a, b) => a - b); return t[5]; })()`, &drawMs),
			evalJS(`document.querySelector('#chart-box canvas').sextantChart.series[0].values.length`, &points))
		br.run(b, "waterfall", chromedp.Navigate(base+"/ui/status"), waitJS(`document.querySelector('#metrics')`),
			evalJS(fmt.Sprintf(`(async () => {
				const { buildTrace, Waterfall } = await import('/ui/assets/waterfall.js');
				const n = %d, spans = [], t0 = 1700000000000000;
				for (let i = 0; i < n; i++) {
					const parent = i === 0 ? null : Math.floor((i - 1) / 8);
					spans.push({ traceID: 'ab', spanID: 's' + i, operationName: 'op ' + (i %% 50), processID: 'p' + (i %% 7),
						references: parent === null ? [] : [{ refType: 'CHILD_OF', traceID: 'ab', spanID: 's' + parent }],
						startTime: t0 + i * 10, duration: 1000 + (i %% 100) * 10, tags: [{ key: 'i', type: 'int64', value: i }], logs: [] });
				}
				const processes = {};
				for (let p = 0; p < 7; p++) processes['p' + p] = { serviceName: 'svc' + p, tags: [] };
				const json = JSON.stringify({ data: [{ traceID: 'ab', spans, processes }] });
				const main = document.getElementById('main');
				while (main.firstChild) main.firstChild.remove();
				const start = performance.now();
				const data = JSON.parse(json).data[0];
				const parsed = performance.now();
				const t = buildTrace(data);
				const built = performance.now();
				const wf = new Waterfall(main, t, {});
				await new Promise(requestAnimationFrame);
				if (document.querySelectorAll('.wf-row').length === 0) throw new Error('no rows');
				const end = performance.now();
				return { ready: end - start, parse: parsed - start, build: built - parsed, render: end - built }; })()`, spans), &ready),
			evalJS(`(async () => {
				const t0 = performance.now();
				for (let i = 0; i < 60; i++) await new Promise(requestAnimationFrame);
				return 60000 / (performance.now() - t0); })()`, &idleFPS),
			evalJS(`(async () => {
				const sc = document.getElementById('waterfall'), times = [];
				const wf = sc.sextantWaterfall, orig = wf.paint.bind(wf);
				let paintMs = 0;
				wf.paint = () => { const t = performance.now(); orig(); paintMs += performance.now() - t; };
				let last = performance.now();
				for (let i = 0; i < 120; i++) {
					sc.scrollTop += 200;
					await new Promise(requestAnimationFrame);
					const now = performance.now(); times.push(now - last); last = now;
				}
				if (!document.querySelector('.wf-row')) throw new Error('no rows after scrolling');
				times.sort((a, b) => a - b);
				const avg = times.reduce((s, x) => s + x, 0) / times.length;
				return { fps: 1000 / avg, p95: times[Math.floor(times.length * 0.95)], paint: paintMs / 120 }; })()`, &scroll))
	}
	b.ReportMetric(drawMs, "explore-draw-ms")
	b.ReportMetric(float64(points), "explore-points/line")
	b.ReportMetric(ready.Ready, "waterfall-ready-ms")
	b.ReportMetric(ready.Parse, "waterfall-parse-ms")
	b.ReportMetric(ready.Build, "waterfall-build-ms")
	b.ReportMetric(ready.Render, "waterfall-render-ms")
	b.ReportMetric(scroll.FPS, "scroll-fps")
	b.ReportMetric(scroll.P95, "scroll-frame-p95-ms")
	b.ReportMetric(idleFPS, "idle-raf-fps")
	b.ReportMetric(scroll.Paint, "scroll-paint-ms")
	b.ReportMetric(firstKB, "first-load-KB")
}

// startServeTB runs serve in-process for a benchmark.
func startServeTB(b *testing.B, cfg config) string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, discardLogger(), ready) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	return <-ready
}
