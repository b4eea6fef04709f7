package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkAlertDelivery measures how long after a step closes, beyond
// --live-delay, the firing notification reaches a webhook receiver: a real
// server (1 s step, live delay 1 s) with one rule, 10 hosts each crossing
// the threshold every 5 s, group_by [alertname, host] and group_wait 0s. One
// op waits for one notification; p50-ms and p99-ms are the latencies.
// Run with -benchtime=200x for a p99 worth the name.
func BenchmarkAlertDelivery(b *testing.B) {
	hook := newWebhookInbox(b)
	const delay = time.Second
	cfg, err := loadConfig([]string{"--listen", "127.0.0.1:0", "--data-dir", b.TempDir(), "--step", "1s",
		"--otlp-http-listen", "", "--otlp-grpc-listen", "", "--zipkin-listen", "", "--spectatord-listen", "", "--live-delay", delay.String()}, env(), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Alerting = alertingConfig{ExternalURL: "http://sextant.example",
		RulesDir:   rulesDir(b, "groups:\n  - name: bench\n    rules:\n      - alert: Blip\n        expr: name,e2e.cpu,:eq,(,host,),:by,50,:gt\n        nodata: ok\n"),
		ConfigFile: filepath.Join(b.TempDir(), "alerting.yaml")}
	// Group per host, so every crossing is its own group.
	os.WriteFile(cfg.Alerting.ConfigFile, []byte(`route: {receiver: hook, group_by: [alertname, host], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
receivers: [{name: hook, webhook: {url: "`+hook.srv.URL+`"}}]
`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	base := "http://" + <-ready
	defer func() { cancel(); <-done }()
	vals := map[string]float64{}
	hosts := []string{"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"}
	for _, h := range hosts {
		vals[h] = 0
	}
	pub := startGauges(b, base, vals)
	defer pub.stop()
	stopFlip := make(chan struct{})
	flipDone := make(chan struct{})
	go func() {
		// Host i is over the threshold in the seconds where (s+i)%5 == 0.
		defer close(flipDone)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopFlip:
				return
			case <-tk.C:
			}
			s := time.Now().Unix()
			for i, h := range hosts {
				v := 0.0
				if (s+int64(i))%5 == 0 {
					v = 100
				}
				pub.set(h, v)
			}
		}
	}()
	defer func() { close(stopFlip); <-flipDone }()
	var lat []time.Duration
	for b.Loop() {
		for {
			m := hook.next(b, 30*time.Second)
			if m.msg.Status != "firing" {
				continue
			}
			for _, a := range m.msg.Alerts {
				// The step at startsAt closed then; it was due delay later.
				lat = append(lat, m.at.Sub(a.StartsAt.Add(delay)))
			}
			break
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)), "notifications")
}
