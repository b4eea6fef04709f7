package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(nil, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{Listen: ":7101", OTLPHTTPListen: ":4318", OTLPGRPCListen: ":4317", DataDir: "./sextant-data",
		Step: time.Minute, MemoryRetention: 24 * time.Hour, Retention: 15 * 24 * time.Hour,
		TraceRetention: 7 * 24 * time.Hour, TraceMaxBytes: 10 << 30, IngestMaxAge: time.Hour, Fsync: wal.SyncBatch,
		LiveDelay: 5 * time.Second, MaxSeries: 10_000_000, MaxSeriesByName: 1_000_000,
		QueryLimits:  tsdb.Cost{Series: 1_000_000, Datapoints: 500_000_000, Bytes: 256 << 20},
		ZipkinListen: ":9411", SpectatorDListen: "127.0.0.1:1234"}
	host, _ := os.Hostname()
	want.Cluster = clusterConfig{Roles: roles{true, true, true}, NodeID: host, TopicPrefix: "sextant",
		Partitions: 64, ReplicationFactor: 2}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "sextant.yaml")
	os.WriteFile(file, []byte("listen: \":1\"\nstep: 10s\nfsync: always\nretention: 30d\n"), 0o644)
	// The file sets listen, step, fsync, retention; the environment
	// overrides step and fsync; the flag overrides fsync again.
	c, err := loadConfig([]string{"--config", file, "--fsync", "interval"},
		env("SEXTANT_STEP", "5s", "SEXTANT_FSYNC", "batch", "SEXTANT_DATA_DIR", "/x"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":1" || c.Step != 5*time.Second || c.Fsync != wal.SyncInterval ||
		c.Retention != 30*24*time.Hour || c.DataDir != "/x" {
		t.Errorf("resolved %+v", c)
	}
	// SEXTANT_CONFIG names the file when --config does not.
	c, err = loadConfig(nil, env("SEXTANT_CONFIG", file), io.Discard)
	if err != nil || c.Listen != ":1" {
		t.Errorf("SEXTANT_CONFIG: %+v, %v", c, err)
	}
	// Empty values are allowed where they disable something.
	c, err = loadConfig([]string{"--otlp-grpc-listen="}, env(), io.Discard)
	if err != nil || c.OTLPGRPCListen != "" {
		t.Errorf("empty otlp-grpc-listen: %+v, %v", c, err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: \":1\"\nretension: 30d\n"), 0o644)
	nested := filepath.Join(dir, "nested.yaml")
	os.WriteFile(nested, []byte("tsdb:\n  step: 10s\n"), 0o644)
	for _, tc := range []struct {
		args    []string
		env     []string
		wantErr string
	}{
		{[]string{"--config", bad}, nil, `unknown key "retension"`},
		{[]string{"--config", nested}, nil, `unknown key "tsdb.step"`},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, nil, "read config"},
		{[]string{"--step", "fast"}, nil, "--step"},
		{nil, []string{"SEXTANT_FSYNC", "sometimes"}, "--fsync"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--listen="}, nil, "--listen"},
		{[]string{"--bogus"}, nil, "bogus"},
		{[]string{"extra"}, nil, "unexpected argument"},
		{[]string{"--max-series-per-query", "0"}, nil, "--max-series-per-query"},
		{nil, []string{"SEXTANT_MAX_DATAPOINTS_PER_QUERY", "many"}, "--max-datapoints-per-query"},
		{[]string{"--max-bytes-per-query", "0"}, nil, "--max-bytes-per-query"},
		{[]string{"--max-bytes-per-query", "lots"}, nil, "--max-bytes-per-query"},
	} {
		_, err := loadConfig(tc.args, env(tc.env...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("loadConfig(%v, %v) = %v, want an error containing %q", tc.args, tc.env, err, tc.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0": 0, "512": 512, "10GiB": 10 << 30, "512MiB": 512 << 20, "1T": 1 << 40, "2KB": 2048, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "10XB", "1.5GiB", "99999999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("60s", time.Minute)
	f("15d", 15*24*time.Hour)
	f("1d12h", 36*time.Hour)
	f("2w", 14*24*time.Hour)
	f("1y", 365*24*time.Hour)
	f("500ms", 500*time.Millisecond)
	f("1.5h", 90*time.Minute)
	for _, bad := range []string{"", "d", "10", "10x", "1h-"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) succeeded", bad)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if code := run([]string{"serve", "--help"}, env(), &out, io.Discard); code != 0 {
		t.Errorf("serve --help exit %d", code)
	}
	for _, f := range serveFlags {
		if !strings.Contains(out.String(), "--"+f.name) || !strings.Contains(out.String(), envName(f.name)) {
			t.Errorf("help lacks --%s or %s:\n%s", f.name, envName(f.name), out.String())
		}
	}
	if code := run([]string{"frobnicate"}, env(), io.Discard, io.Discard); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
}

// TestDocsExample loads the example configuration of docs/server.md.
func TestDocsExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/server.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("docs/server.md has no yaml example")
	}
	example, _, _ := strings.Cut(rest, "```")
	file := filepath.Join(t.TempDir(), "sextant.yaml")
	os.WriteFile(file, []byte(example), 0o644)
	c, err := loadConfig([]string{"--config", file}, env(), io.Discard)
	if err != nil {
		t.Fatalf("the documented example does not load: %v", err)
	}
	if c.DataDir != "/var/lib/sextant" || c.Retention != 30*24*time.Hour {
		t.Errorf("example resolved to %+v", c)
	}
	// Every flag of the table is a real setting and vice versa.
	for _, f := range serveFlags {
		if !strings.Contains(string(doc), "`--"+f.name+"`") {
			t.Errorf("docs/server.md does not document --%s", f.name)
		}
	}
}
