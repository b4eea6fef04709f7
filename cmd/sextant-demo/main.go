// Command sextant-demo runs a small streaming-video backend — a frontend
// calling catalog, recommendations and playback services over HTTP — and
// a load generator that drives it, all instrumented only with Sextant's
// client library: metrics published to a Sextant server every step and
// traces exported over OTLP. It fills a fresh server with realistic data.
//
//	sextant-demo [--sextant URL] [--otlp URL] [--step 60s] [--rps 10] [--fault NAME]
//	             [--canary] [--canary-latency 1.3] [--canary-errors 0.05]
//
// The canary switches run playback-baseline and playback-canary beside
// playback (canary.go; docs/canary.md judges them).
//
// Faults (also switchable at run time: curl -XPOST localhost:8080/fault -d NAME):
//
//	none             everything healthy
//	catalog-slow     catalog lookups take ~250 ms longer
//	playback-errors  40% of playback starts fail with a 500
//	recs-down        recommendations answers 503; the frontend falls back
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	Sextant  string        // server base URL for metrics
	OTLP     string        // OTLP/HTTP base URL for traces; "" disables tracing export
	Host     string        // interface the services listen on
	Port     int           // frontend port; the others take the next three; 0 picks free ports
	Step     time.Duration // publish step; match the server's --step
	RPS      float64       // load generator requests per second; 0 disables it
	Duration time.Duration // run time; 0 runs until interrupted
	Fault    string
	Canary   canaryConfig // canary.go
	// AuthToken is sent as a bearer token with metrics and traces.
	AuthToken string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sextant-demo:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	if err := runDemo(ctx, cfg, logger, nil); err != nil {
		logger.Error("demo failed", "err", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("sextant-demo", flag.ContinueOnError)
	fs.SetOutput(out)
	var c config
	fs.StringVar(&c.Sextant, "sextant", "http://localhost:7101", "Sextant server base URL (metrics go to /api/v1/publish)")
	fs.StringVar(&c.OTLP, "otlp", "http://localhost:4318", `OTLP/HTTP base URL for traces ("" disables trace export)`)
	fs.StringVar(&c.Host, "host", "127.0.0.1", "interface the demo services listen on")
	fs.IntVar(&c.Port, "port", 8080, "frontend port; catalog, recommendations and playback take the next three (0: any free ports)")
	fs.DurationVar(&c.Step, "step", time.Minute, "publish step; set it to the server's --step")
	fs.Float64Var(&c.RPS, "rps", 10, "requests per second the load generator sends to the frontend (0: none)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fs.StringVar(&c.Fault, "fault", "none", "fault to inject from the start: "+faultNames())
	canaryFlags(fs, &c.Canary)
	fs.StringVar(&c.AuthToken, "auth-token", "", "bearer token for a Sextant started with --auth-token (sent with metrics and traces)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := c.Canary.validate(); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, ok := parseFault(c.Fault); !ok {
		return c, fmt.Errorf("--fault %q: want one of %s", c.Fault, faultNames())
	}
	if c.Step < time.Second {
		return c, fmt.Errorf("--step %v: at least 1s", c.Step)
	}
	if c.RPS < 0 || c.RPS > 10000 {
		return c, fmt.Errorf("--rps %v: want 0..10000", c.RPS)
	}
	if c.Port < 0 || c.Port > 65532 {
		return c, fmt.Errorf("--port %d: want 0..65532", c.Port)
	}
	return c, nil
}
