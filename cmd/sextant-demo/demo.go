package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
)

// runDemo starts the four services and the load generator, runs until ctx
// ends, then stops them and flushes their metrics and traces. ready, when
// not nil, receives the frontend's address once everything listens.
func runDemo(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string) error {
	// The SDK reports export failures (a server without trace ingest, or
	// down) through the global handler: log them, at most one a minute.
	var lastErr time.Time
	var errMu sync.Mutex
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if time.Since(lastErr) > time.Minute {
			lastErr = time.Now()
			logger.Warn("opentelemetry", "err", err)
		}
	}))

	faults := &faultSwitch{}
	f, _ := parseFault(cfg.Fault)
	faults.set(f)

	names := []string{"frontend", "catalog", "recommendations", "playback"}
	svcs := make(map[string]*service, len(names))
	for _, n := range names {
		s, err := newService(ctx, n, cfg, logger)
		if err != nil {
			return err
		}
		svcs[n] = s
	}
	// Listen first (the frontend needs the others' addresses), then route.
	lns := make(map[string]net.Listener, len(names))
	for i, n := range names {
		port := 0
		if cfg.Port != 0 {
			port = cfg.Port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("%s: %w", n, err)
		}
		lns[n] = ln
		svcs[n].addr = ln.Addr().String()
	}
	base := func(n string) string { return "http://" + svcs[n].addr }
	catalog(svcs["catalog"], faults)
	recommendations(svcs["recommendations"], faults, base("catalog"))
	playback(svcs["playback"], faults)
	playbackURL := base("playback")
	if cfg.Canary.enabled() {
		u, stopCanary, err := startCanary(ctx, cfg, logger, faults, playbackURL)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stopCanary(stopCtx)
		}()
		playbackURL = u
	}
	frontend(svcs["frontend"], faults, base("catalog"), base("recommendations"), playbackURL)
	for _, n := range names {
		svcs[n].serve(lns[n])
	}
	logger.Info("sextant-demo running",
		"frontend", base("frontend"), "catalog", base("catalog"), "recommendations", base("recommendations"), "playback", base("playback"),
		"metrics_to", cfg.Sextant, "traces_to", cfg.OTLP, "step", cfg.Step, "rps", cfg.RPS, "fault", faults.get())
	logger.Info("switch faults with: curl -XPOST " + base("frontend") + "/fault -d playback-errors   (" + faultNames() + ")")
	if ready != nil {
		ready <- svcs["frontend"].addr
	}

	var wg sync.WaitGroup
	if cfg.RPS > 0 {
		wg.Go(func() { loadgen(ctx, base("frontend"), cfg.RPS, logger) })
	}
	<-ctx.Done()
	wg.Wait()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The frontend first, so no call reaches a stopped service.
	for _, n := range names {
		svcs[n].stop(stopCtx)
	}
	logger.Info("sextant-demo stopped")
	return nil
}

// loadgen sends rps requests per second to the frontend from a pool of
// users: mostly home pages, some plays (a few of unknown titles), a few
// bad requests. When the frontend is slower than the rate allows, it
// skips requests rather than piling up goroutines.
func loadgen(ctx context.Context, frontend string, rps float64, logger *slog.Logger) {
	client := &http.Client{Timeout: 10 * time.Second}
	sem := make(chan struct{}, 64)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rps))
	defer tick.Stop()
	devices := []string{"tv", "tv", "mobile", "web"}
	var wg sync.WaitGroup
	skipped := 0
	defer func() {
		wg.Wait()
		if skipped > 0 {
			logger.Info("loadgen skipped requests: the frontend was slower than the rate", "skipped", skipped)
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			skipped++
			continue
		}
		var method, url string
		user := "u" + strconv.Itoa(1+i*7919%500)
		switch r := i % 20; {
		case r < 13:
			method, url = http.MethodGet, frontend+"/api/home?user="+user
		case r < 19:
			id := 1 + (i*104729)%titleCount
			if i%97 == 0 {
				id = titleCount + 1 + i%50 // a title that does not exist
			}
			method, url = http.MethodPost, fmt.Sprintf("%s/api/play/%d?device=%s&user=%s", frontend, id, devices[i%len(devices)], user)
		default:
			method, url = http.MethodGet, frontend+"/api/home" // no user: 400
		}
		wg.Go(func() {
			defer func() { <-sem }()
			req, _ := http.NewRequestWithContext(ctx, method, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					logger.Debug("loadgen", "err", err)
				}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
}
