package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// canaryPoints is the number of 1 s steps of the canary tests' window.
const canaryPoints = 150

// publishFleet publishes, over the canaryPoints seconds before now, a
// baseline (nf.cluster=api-v1) and a canary (api-v2) of one service as
// gauges: latency with the canary's factor and an error rate the same on
// both sides.
func publishFleet(t *testing.T, addr string, now time.Time, app string, latencyFactor float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(latencyFactor*1000), 3))
	type metric struct {
		Tags      map[string]string `json:"tags"`
		Timestamp int64             `json:"timestamp"`
		Value     float64           `json:"value"`
	}
	var ms []metric
	start := now.Add(-canaryPoints * time.Second).Truncate(time.Second)
	for i := range canaryPoints {
		ts := start.Add(time.Duration(i) * time.Second).UnixMilli()
		for _, side := range []struct {
			cluster string
			factor  float64
		}{{"api-v1", 1}, {"api-v2", latencyFactor}} {
			ms = append(ms,
				metric{map[string]string{"name": "latency", "nf.cluster": side.cluster}, ts, 100 * side.factor * (1 + 0.05*rng.NormFloat64())},
				metric{map[string]string{"name": "errors", "nf.cluster": side.cluster}, ts, 2 * (1 + 0.1*rng.NormFloat64())})
		}
	}
	body, _ := json.Marshal(map[string]any{"tags": map[string]string{"nf.app": app, "atlas.dstype": "gauge"}, "metrics": ms})
	resp, err := http.Post("http://"+addr+"/api/v1/publish", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish = %d %s", resp.StatusCode, b)
	}
}

// canaryRequest is a judge request over the published window for app.
func canaryRequest(app string, latencyCritical bool, extra ...string) string {
	ms := []string{
		fmt.Sprintf(`{"name":"latency","q":"name,latency,:eq,nf.app,%s,:eq,:and,:avg","direction":"increase","critical":%v}`, app, latencyCritical),
		fmt.Sprintf(`{"name":"errors","q":"name,errors,:eq,nf.app,%s,:eq,:and,:sum","direction":"increase"}`, app),
	}
	ms = append(ms, extra...)
	return fmt.Sprintf(`{"baseline":"nf.cluster,api-v1,:eq","canary":"nf.cluster,api-v2,:eq","s":"e-%ds","e":"now-5s","step":"1s","metrics":[%s]}`,
		canaryPoints-10, strings.Join(ms, ","))
}

func judgeOn(t *testing.T, addr, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/api/v1/canary/judge", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

func classes(a map[string]any) map[string]string {
	out := map[string]string{}
	ms, _ := a["metrics"].([]any)
	for _, m := range ms {
		mm := m.(map[string]any)
		out[mm["name"].(string)] = mm["classification"].(string)
	}
	return out
}

// TestCanaryServe judges published canaries on an in-process server: a
// 30% latency regression with an unchanged error rate fails on latency; a
// healthy canary passes; a critical metric without data is nodata and
// the judgement is not a pass; a continuous run starts and answers GET.
func TestCanaryServe(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testConfig(t))
	now := time.Now()
	publishFleet(t, addr, now, "slow", 1.3)
	publishFleet(t, addr, now, "healthy", 1.0)

	code, a := judgeOn(t, addr, canaryRequest("slow", true))
	if c := classes(a); code != 200 || c["latency"] != "high" || c["errors"] != "pass" || a["result"] != "fail" {
		t.Errorf("regression: %d %v %v (%v)", code, c, a["result"], a["reason"])
	}
	code, a = judgeOn(t, addr, canaryRequest("healthy", true))
	if c := classes(a); code != 200 || c["latency"] != "pass" || c["errors"] != "pass" || a["result"] != "pass" || a["score"] != 100.0 {
		t.Errorf("healthy: %d %v %v %v (%v)", code, c, a["result"], a["score"], a["reason"])
	}
	code, a = judgeOn(t, addr, canaryRequest("healthy", true, `{"name":"saturation","q":"name,saturation,:eq,:max","critical":true}`))
	if c := classes(a); code != 200 || c["saturation"] != "nodata" || a["result"] == "pass" {
		t.Errorf("critical nodata: %d %v %v (%v)", code, c, a["result"], a["reason"])
	}
	code, a = judgeOn(t, addr, strings.Replace(canaryRequest("healthy", true), `"step":"1s"`, `"step":"1500ms"`, 1))
	if code != 400 || a["param"] != "step" {
		t.Errorf("bad step: %d %v", code, a)
	}

	// A continuous run is accepted, stored and readable.
	run := strings.Replace(canaryRequest("healthy", true), `"s":"e-140s","e":"now-5s"`, `"interval":"1m","lifetime":"1h"`, 1)
	resp, err := http.Post("http://"+addr+"/api/v1/canary/runs", "application/json", strings.NewReader(run))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 201 || created.ID == "" {
		t.Fatalf("start run = %d %+v", resp.StatusCode, created)
	}
	code, body := get(t, "http://"+addr+"/api/v1/canary/runs/"+created.ID)
	if code != 200 || !strings.Contains(body, `"state":"running"`) || !strings.Contains(body, `"intervals":[]`) {
		t.Errorf("get run = %d %s", code, body)
	}
}

// TestCanaryCLI runs the pipeline gate against an in-process server and
// checks its exit codes: 0 pass, 1 fail, 2 marginal or error.
func TestCanaryCLI(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testConfig(t))
	now := time.Now()
	publishFleet(t, addr, now, "slow", 1.3)
	publishFleet(t, addr, now, "healthy", 1.0)
	dir := t.TempDir()
	yamlFile := func(name, app string, critical bool) string {
		p := filepath.Join(dir, name)
		y := fmt.Sprintf(`# judge request, the JSON body's keys
baseline: nf.cluster,api-v1,:eq
canary: nf.cluster,api-v2,:eq
s: e-%ds
e: now-5s
step: 1s
metrics:
  - name: latency
    q: name,latency,:eq,nf.app,%s,:eq,:and,:avg
    direction: increase
    critical: %v
  - name: errors
    q: name,errors,:eq,nf.app,%s,:eq,:and,:sum
    direction: increase
thresholds: {pass: 75, marginal: 50}
`, canaryPoints-10, app, critical, app)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"pass", []string{"--server", "http://" + addr, "-f", yamlFile("pass.yaml", "healthy", true)}, 0, []string{"latency", "errors", "PASS"}},
		{"fail", []string{"--server", "http://" + addr, "-f", yamlFile("fail.yaml", "slow", true)}, 1, []string{"high *", "FAIL", `critical metric "latency" is high`}},
		{"marginal", []string{"--server", "http://" + addr, "-f", yamlFile("marginal.yaml", "slow", false)}, 2, []string{"MARGINAL", "score 50"}},
		{"bad-yaml-key", []string{"--server", "http://" + addr, "-f", writeFile(t, dir, "typo.yaml", "baseline: a,b,:eq\nmetrix: []\n")}, 2, []string{"metrix: unknown field"}},
		{"server-refuses", []string{"--server", "http://" + addr, "-f", writeFile(t, dir, "bad.yaml", "baseline: a,b,:eq\ncanary: a,c,:eq\ns: e-1m\nmetrics: [{name: x, q: 'x,:frob'}]\n")}, 2, []string{"400", "metrics[0].q"}},
		{"no-server", []string{"--server", "http://127.0.0.1:1", "-f", yamlFile("pass2.yaml", "healthy", true)}, 2, []string{"connect"}},
		{"no-file", []string{"--server", "http://" + addr}, 2, []string{"-f"}},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		code := run(append([]string{"canary", "judge"}, tc.args...), env(), &out, &errOut)
		all := out.String() + errOut.String()
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.name, code, tc.code, all)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(all, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, all)
			}
		}
	}
}

func writeFile(t *testing.T, dir, name, s string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCanaryBinary is the gate as a pipeline runs it: the real binary
// serves, the real binary judges, and the exit code decides.
func TestCanaryBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	srv := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "1h")
	defer func() {
		srv.cmd.Process.Signal(os.Interrupt)
		srv.cmd.Wait()
	}()
	now := time.Now()
	publishFleet(t, srv.addr, now, "slow", 1.3)
	publishFleet(t, srv.addr, now, "healthy", 1.0)
	dir := t.TempDir()
	for _, tc := range []struct {
		app  string
		code int
	}{{"slow", 1}, {"healthy", 0}} {
		f := writeFile(t, dir, tc.app+".json", canaryRequest(tc.app, true)) // JSON is YAML too
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, bin, "canary", "judge", "--server", "http://"+srv.addr, "-f", f).CombinedOutput()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), "latency") {
			t.Errorf("%s: exit %d, want %d:\n%s", tc.app, code, tc.code, out)
		}
	}
}

// TestCanaryDocsYAML checks that the request file of docs/canary.md is
// one the gate accepts.
func TestCanaryDocsYAML(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/canary.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("docs/canary.md has no yaml example")
	}
	src, _, _ := strings.Cut(rest, "```")
	body, err := canaryYAML([]byte(src))
	if err != nil {
		t.Fatalf("the documented canary.yaml: %v", err)
	}
	if !strings.Contains(string(body), `"critical":true`) || !strings.Contains(string(body), `"pass":75`) {
		t.Errorf("body = %s", body)
	}
}
