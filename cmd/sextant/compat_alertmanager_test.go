package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// alertmanagerVersion is the Alertmanager the compatibility test builds
// from the Go module proxy (not a dependency of this module). Releases
// from v0.34 on embed a UI build their module zip lacks, so `go install`
// fails for them; v0.31.1 builds.
const alertmanagerVersion = "v0.31.1"

// buildAlertmanager installs Alertmanager into a directory under the temp
// dir, reused across runs.
func buildAlertmanager(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "sextant-alertmanager-"+alertmanagerVersion)
	bin := filepath.Join(dir, "alertmanager")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", "github.com/prometheus/alertmanager/cmd/alertmanager@"+alertmanagerVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	cmd.Dir = t.TempDir() // outside this module
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build alertmanager: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCompatAlertmanager: a real Alertmanager receives the alerts Sextant
// pushes and lists them in its own GET /api/v2/alerts, with endsAt as a
// lease, until the alert resolves. Run by `make compat` (SEXTANT_COMPAT=1).
func TestCompatAlertmanager(t *testing.T) {
	if os.Getenv("SEXTANT_COMPAT") != "1" {
		t.Skip("set SEXTANT_COMPAT=1 (make compat) to build and run Alertmanager")
	}
	bin := buildAlertmanager(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "am.yml")
	os.WriteFile(cfgFile, []byte("route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n"), 0o644)
	amAddr := freePort(t)
	am := exec.Command(bin, "--config.file="+cfgFile, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	if err := am.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Process.Kill(); am.Wait() })
	amURL := "http://" + amAddr
	waitFor(t, 30*time.Second, "the condition", func() bool {
		code, _ := getQuiet(amURL + "/-/ready")
		return code == 200
	})

	cfg := testConfig(t)
	cfg.LiveDelay = 200 * time.Millisecond
	cfg.Alerting = alertingConfig{RulesDir: rulesDir(t, e2eRules), ExternalURL: "http://sextant.example", AlertmanagerURL: amURL}
	base := "http://" + startServe(t, cfg)
	pub := startGauges(t, base, map[string]float64{"a": 90})

	type amAlert struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
		Status       struct{ State string }
	}
	list := func() []amAlert {
		_, body := getQuiet(amURL + "/api/v2/alerts")
		var out []amAlert
		json.Unmarshal([]byte(body), &out)
		return out
	}
	var got []amAlert
	waitFor(t, 30*time.Second, "the condition", func() bool { got = list(); return len(got) == 1 })
	a := got[0]
	if a.Labels["alertname"] != "HighCPU" || a.Labels["host"] != "a" || a.Labels["severity"] != "page" ||
		a.Annotations["summary"] != "cpu of a is 1" || a.GeneratorURL != "http://sextant.example/ui/alerts/HighCPU" ||
		a.Status.State != "active" {
		t.Errorf("alertmanager lists %+v", a)
	}
	if lease := time.Until(a.EndsAt); lease < 2*time.Minute || lease > 5*time.Minute {
		t.Errorf("endsAt lease %v, want about 4m", lease)
	}
	// Resolved in Sextant: pushed at once with its end; Alertmanager stops
	// listing it as active.
	pub.set("a", 10)
	waitFor(t, 30*time.Second, "the condition", func() bool {
		for _, a := range list() {
			if a.Status.State == "active" && a.EndsAt.After(time.Now()) {
				return false
			}
		}
		return true
	})
	fmt.Fprintln(os.Stderr, "alertmanager", alertmanagerVersion, "listed and resolved the pushed alert")
}

// getQuiet is a GET that reports failure as a zero status.
func getQuiet(url string) (int, string) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var b []byte
	b, _ = readAllLimit(resp.Body)
	return resp.StatusCode, string(b)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func readAllLimit(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 1<<20)) }
