package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// canaryConfig runs a second version of the playback service as a canary
// next to a fresh baseline of the current version, as Kayenta recommends:
// playback-baseline and playback-canary (tags nf.cluster and version),
// each taking a quarter of the play calls; the main
// playback cluster keeps the other half.
type canaryConfig struct {
	On      bool    // run a canary even without a regression
	Latency float64 // the canary's latency factor (1.3 = 30% slower); 0 = 1
	Errors  float64 // failure rate the canary adds to playback starts
}

func (c canaryConfig) enabled() bool { return c.On || c.Latency > 0 || c.Errors > 0 }

// canaryFlags adds the canary switches to fs.
func canaryFlags(fs *flag.FlagSet, c *canaryConfig) {
	fs.BoolVar(&c.On, "canary", false, "run playback-baseline and playback-canary clusters beside playback (a healthy canary unless the switches below say otherwise)")
	fs.Float64Var(&c.Latency, "canary-latency", 0, "latency factor of the canary version of playback, e.g. 1.3 for 30% slower (implies --canary)")
	fs.Float64Var(&c.Errors, "canary-errors", 0, "extra failure rate of the canary's playback starts, e.g. 0.05 (implies --canary)")
}

// validate checks the switches.
func (c canaryConfig) validate() error {
	if c.Latency < 0 || c.Latency > 100 {
		return fmt.Errorf("--canary-latency %v: want 0..100", c.Latency)
	}
	if c.Errors < 0 || c.Errors > 1 {
		return fmt.Errorf("--canary-errors %v: want 0..1", c.Errors)
	}
	return nil
}

// startCanary starts the baseline and canary playback clusters and a
// splitter in front of them and of mainURL; the frontend calls the
// splitter's URL. stop shuts everything down.
func startCanary(ctx context.Context, cfg config, logger *slog.Logger, faults *faultSwitch, mainURL string) (splitURL string, stop func(context.Context), err error) {
	var svcs []*service
	var backends []*url.URL
	for _, v := range []struct{ cluster, version string }{{"playback-baseline", "1.4.2"}, {"playback-canary", "1.5.0"}} {
		s, err := newServiceTagged(ctx, "playback", cfg, logger, map[string]string{"nf.cluster": v.cluster, "version": v.version})
		if err != nil {
			return "", nil, err
		}
		if v.cluster == "playback-canary" {
			s.slowdown, s.extraErrors = cfg.Canary.Latency, cfg.Canary.Errors
		}
		playback(s, faults)
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, "0"))
		if err != nil {
			for _, s := range svcs {
				s.stop(ctx)
			}
			return "", nil, fmt.Errorf("%s: %w", v.cluster, err)
		}
		s.addr = ln.Addr().String()
		s.serve(ln)
		svcs = append(svcs, s)
		backends = append(backends, &url.URL{Scheme: "http", Host: s.addr})
	}
	main, err := url.Parse(mainURL)
	if err != nil {
		return "", nil, err
	}
	// Half of the calls to the main cluster, a quarter to each of the
	// others, in turn.
	order := []*url.URL{main, backends[0], main, backends[1]}
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(order[next.Add(1)%uint64(len(order))])
		r.Out.Host = r.In.Host
	}}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, "0"))
	if err != nil {
		for _, s := range svcs {
			s.stop(ctx)
		}
		return "", nil, fmt.Errorf("canary splitter: %w", err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("canary splitter", "err", err)
		}
	}()
	logger.Info("canary running", "baseline", svcs[0].addr, "canary", svcs[1].addr, "splitter", ln.Addr().String(),
		"latency_factor", cfg.Canary.Latency, "extra_errors", cfg.Canary.Errors)
	return "http://" + ln.Addr().String(), func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			logger.Warn("canary splitter shutdown", "err", err)
		}
		for _, s := range svcs {
			s.stop(ctx)
		}
	}, nil
}
