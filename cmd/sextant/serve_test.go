package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func testConfig(t *testing.T) config {
	t.Helper()
	c, err := loadConfig([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--step", "1s",
		"--memory-retention", "1h", "--otlp-http-listen", "127.0.0.1:0", "--otlp-grpc-listen", "127.0.0.1:0",
		"--zipkin-listen", "", "--spectatord-listen", ""}, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startServe runs serve in-process with cfg and returns its HTTP
// address; it stops, and its error is checked, when the test ends.
func startServe(t *testing.T, cfg config) string {
	t.Helper()
	addr, _ := serveAt(t, cfg)
	return addr
}

// serveAt runs serve in-process with cfg until the returned stop is
// called (or the test ends); stop checks serve's error.
func serveAt(t *testing.T, cfg config) (addr string, stop func()) {
	t.Helper()
	return startServeNode(t, cfg, nil)
}

// startServeNode is serveAt through serveNode: prepare, when set, sees the
// node before its components are built (in-process cluster tests set its
// cluster wiring).
func startServeNode(t *testing.T, cfg config, prepare func(*node)) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serveNode(ctx, cfg, slog.New(slog.DiscardHandler), ready, prepare) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr = <-ready:
		return addr, stop
	case err := <-done:
		done <- nil // for stop
		t.Fatalf("serve did not start: %v", err)
		return "", nil
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServe(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	addr := <-ready
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	selfMetricsStored(t, addr)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(shutdownTimeout):
		t.Fatal("serve did not stop within the shutdown timeout")
	}
	// Sextant stored its own metrics in itself.
	store, err := db.Open(cfg.DataDir, db.Options{Step: 1000, MemoryRetention: 3600_000})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	vals, err := store.Tags(context.Background(), tsdb.TagsRequest{Key: "name", Query: tags.Eq("nf.app", "sextant")})
	if err != nil || len(vals) == 0 {
		t.Fatalf("self-metrics names = %v, %v", vals, err)
	}
}

// TestBinary builds the sextant binary, runs it, and stops it with SIGTERM
// and SIGINT: it must exit 0 and keep what it stored.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		// Settings from the environment this time.
		b := runBinary(t, bin, []string{"SEXTANT_DATA_DIR=" + dir, "SEXTANT_MEMORY_RETENTION=1h"})
		cmd, addr := b.cmd, b.addr
		if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok" {
			t.Errorf("/healthz = %d %q", code, body)
		}
		selfMetricsStored(t, addr)
		start := time.Now()
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		if err != nil {
			t.Fatalf("after %v: %v", sig, err)
		}
		if d := time.Since(start); d > shutdownTimeout {
			t.Errorf("shutdown took %v", d)
		}
	}
	store, err := db.Open(dir, db.Options{Step: 1000, MemoryRetention: 3600_000})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if n := store.Head().NumSeries(); n == 0 {
		t.Error("no series survived the binary's restarts")
	}
}
