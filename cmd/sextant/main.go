// Command sextant is the Sextant server: `sextant serve` runs the store,
// the ingest endpoints, the query APIs and the UI in one process.
package main

import (
	// Time zones for the graph API (tz=US/Pacific) on hosts without tzdata.
	_ "time/tzdata"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run executes a command line and returns the process exit code.
func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := loadConfig(args[1:], lookupEnv, stdout)
		if errors.Is(err, errHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "sextant: %v\n", err)
			return 2
		}
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
		applyMemoryDefaults(lookupEnv, logger) // memory.go
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, cfg, logger, nil); err != nil {
			logger.Error("sextant stopped", "err", err)
			return 1
		}
		return 0
	case "test":
		return testRules(args[1:], stdout, stderr)
	case "canary":
		return runCanary(context.Background(), args[1:], lookupEnv, stdout, stderr)
	case "repair":
		return repair(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "sextant", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topUsage)
		return 0
	}
	fmt.Fprintf(stderr, "sextant: unknown command %q\n\n%s", args[0], topUsage)
	return 2
}

const topUsage = `Usage: sextant <command> [flags]

Commands:
  serve     run Sextant (sextant serve --help lists its settings)
  test      run alert rule unit tests (sextant test rules FILE...)
  canary    judge a canary against its baseline: sextant canary judge --server URL -f FILE
  repair    quarantine damaged parts of the write-ahead log of a stopped server, keep the rest
  version   print the version
`
