package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// peer is a program built from the Go module proxy: package pkg of module
// mod at version.
type peer struct {
	name, mod, version, pkg string
}

// The peers of `make bench-vs`, pinned so that reruns compare like with
// like. VictoriaMetrics v1.151.0 is the newest that builds with this
// repository's Go (cmd/sextant/compat_test.go builds vmagent of the same
// version); cmd/jaeger is Jaeger v2 (an OpenTelemetry Collector
// distribution).
var (
	vmPeer     = peer{"victoria-metrics", "github.com/VictoriaMetrics/VictoriaMetrics", "v1.151.0", "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"}
	jaegerPeer = peer{"jaeger", "github.com/jaegertracing/jaeger", "v1.76.0", "github.com/jaegertracing/jaeger/cmd/jaeger"}
)

// buildPeer builds p into cache (once: an existing binary of the same
// version is reused) and returns the binary's path. Like the compatibility
// suite's goProgram it builds in a temporary module with GOFLAGS=-mod=mod,
// never touching this module's go.mod; the temporary module copies the
// peer's replace directives, which `go install pkg@version` refuses.
func buildPeer(ctx context.Context, cache string, p peer, log io.Writer) (string, error) {
	bin := filepath.Join(cache, p.name+"-"+p.version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "bench-vs-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	gocmd := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out, nil
	}
	start := time.Now()
	fmt.Fprintf(log, "building %s@%s into %s\n", p.pkg, p.version, cache)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module benchvs\n\ngo 1.26\n"), 0o644); err != nil {
		return "", err
	}
	out, err := gocmd("mod", "download", "-json", p.mod+"@"+p.version)
	if err != nil {
		return "", err
	}
	var info struct{ GoMod string }
	if err := json.Unmarshal(out, &info); err != nil || info.GoMod == "" {
		return "", fmt.Errorf("go mod download %s@%s: no go.mod in %q", p.mod, p.version, out)
	}
	peerMod, err := os.ReadFile(info.GoMod)
	if err != nil {
		return "", err
	}
	mod := "module benchvs\n\ngo 1.26\n\nrequire " + p.mod + " " + p.version + "\n"
	for _, r := range replaceDirectives(string(peerMod)) {
		mod += "\nreplace " + r + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", err
	}
	if _, err := gocmd("build", "-o", bin+".tmp", p.pkg); err != nil {
		return "", err
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "built %s in %v\n", p.name, time.Since(start).Round(time.Second))
	return bin, nil
}

// replaceDirectives returns the replace directives of a go.mod file (both
// the one-line and the block form) that point at another module version;
// replacements by a local directory cannot apply outside the peer's own
// repository and are left out.
func replaceDirectives(gomod string) []string {
	var out []string
	inBlock := false
	for line := range strings.SplitSeq(gomod, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		var r string
		switch {
		case inBlock && line == ")":
			inBlock = false
		case inBlock:
			r = line
		case line == "replace (":
			inBlock = true
		case strings.HasPrefix(line, "replace "):
			r = strings.TrimSpace(strings.TrimPrefix(line, "replace "))
		}
		_, target, ok := strings.Cut(r, "=>")
		if !ok {
			continue
		}
		f := strings.Fields(target)
		if len(f) != 2 || strings.HasPrefix(f[0], ".") || strings.HasPrefix(f[0], "/") {
			continue // a local directory
		}
		out = append(out, strings.Join(strings.Fields(r), " "))
	}
	return out
}

// process is a server under test: a child process with its output in a
// log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // of Wait, once done is closed
}

// startProcess runs bin with args, its output appended to logPath, and
// waits until ready answers (ready is polled every 100 ms for up to two
// minutes, or until the process exits).
func startProcess(ctx context.Context, name, bin string, args []string, logPath string, ready func(context.Context) error) (*process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := ready(ctx)
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			lf.Close()
			return nil, fmt.Errorf("%s exited before it was ready (%v): see %s\n%s", name, p.err, logPath, tail(logPath))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not ready within 2 minutes: %v\n%s", name, err, tail(logPath))
		}
	}
}

// pid is the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the process to exit (SIGTERM), kills it after 30 s, and waits
// for it.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// httpReady returns a readiness check that wants a 2xx from url.
func httpReady(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// tcpReady returns a readiness check that wants addr to accept a
// connection.
func tcpReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// allReady combines readiness checks.
func allReady(checks ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		for _, c := range checks {
			errs = append(errs, c(ctx))
		}
		return errors.Join(errs...)
	}
}

// jaegerConfig is the YAML configuration of Jaeger v2 for the span runs:
// the OTLP receiver (HTTP and gRPC), the storage exporter without the
// batch processor and without a queue, so that an OTLP answer comes after
// the spans were written, Badger on dir with durable writes (consistency:
// SyncWrites), and the query service (the Jaeger HTTP API Sextant also
// serves) on queryAddr. The collector's own metrics are off.
func jaegerConfig(dir, otlpHTTP, otlpGRPC, queryHTTP, queryGRPC string) string {
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: store
    http:
      endpoint: %q
    grpc:
      endpoint: %q
  jaeger_storage:
    backends:
      store:
        badger:
          directories:
            keys: %q
            values: %q
          ephemeral: false
          consistency: true
          ttl:
            spans: 48h
receivers:
  otlp:
    protocols:
      http:
        endpoint: %q
      grpc:
        endpoint: %q
exporters:
  jaeger_storage_exporter:
    trace_storage: store
`, queryHTTP, queryGRPC, filepath.Join(dir, "keys"), filepath.Join(dir, "values"), otlpHTTP, otlpGRPC)
}
