package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLiveDocsClient builds the Go client of docs/live.md as its own
// module and runs it against a real server: it must print the backfill
// and three live steps of the published series.
func TestLiveDocsClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the documented client")
	}
	t.Parallel()
	doc, err := os.ReadFile("../../docs/live.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no Go example in docs/live.md")
	}
	dir := t.TempDir()
	sums, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	// The client's module requires what this one does of gorilla's, so the
	// build needs nothing beyond the module cache.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	version := func(mod string) string {
		for _, l := range strings.Split(string(gomod), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == mod {
				return f[1]
			}
		}
		t.Fatalf("%s not in go.mod", mod)
		return ""
	}
	files := map[string]string{
		"main.go": string(m[1]),
		"go.mod": "module liveclient\n\ngo 1.26\n\nrequire (\n\tgithub.com/gorilla/websocket " + version("github.com/gorilla/websocket") +
			"\n\tgolang.org/x/net " + version("golang.org/x/net") + "\n)\n",
		"go.sum": string(sums),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "client")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the documented client: %v\n%s", err, out)
	}

	cfg := testConfig(t)
	cfg.LiveDelay = 200 * time.Millisecond
	addr := startServe(t, cfg)
	pub := startLivePublisher(addr)
	defer func() { close(pub.stop); <-pub.done }()
	out, err := exec.Command(bin, addr, "name,live.e2e,:eq,:sum", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 {
		t.Fatalf("client printed %d lines, want the backfill and 3 steps:\n%s", len(lines), out)
	}
	re := regexp.MustCompile(`^sum\(name=live\.e2e\) \[(\d+), (\d+)\) (\d+) values, last [0-9.]+$`)
	for i, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d %q is not a line of sum(name=live.e2e)", i, l)
		}
		if want := map[bool]string{true: "60", false: "1"}[i == 0]; m[3] != want {
			t.Errorf("line %d has %s values, want %s", i, m[3], want)
		}
	}
}

// TestAllowedOrigins: --allowed-origins lets a foreign origin open a
// stream and call the APIs (CORS); other origins are refused a stream.
func TestAllowedOrigins(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AllowedOrigins = "https://dash.example.com, https://ops.example.com"
	addr := startServe(t, cfg)
	get := func(path, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/api/v1/stream", "https://ops.example.com"); r.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("allowed origin: stream answered %d", r.StatusCode)
	}
	if r := get("/api/v1/stream", "https://evil.example.com"); r.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: stream answered %d, want 403", r.StatusCode)
	}
	if r := get("/api/v1/tags", "https://dash.example.com"); r.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
		t.Errorf("allowed origin: tags API without CORS headers: %v", r.Header)
	}
	if r := get("/api/v1/tags", "https://evil.example.com"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin: tags API with CORS headers: %v", r.Header)
	}
}
