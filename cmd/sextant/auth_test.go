package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sextant-dev/sextant/lib"
)

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthToken runs the real binary with --auth-token: every endpoint but
// /healthz needs the bearer token on the main listener, OTLP/HTTP and
// OTLP/gRPC; refusals are JSON 401s; changes from another site are refused
// with a 403; lib's publisher sends the token.
func TestAuthToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	otlpHTTP, otlpGRPC := freeAddr(t), freeAddr(t)
	const token = "s3cret-t0ken"
	b := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "1h", "--auth-token", token,
		"--otlp-http-listen", otlpHTTP, "--otlp-grpc-listen", otlpGRPC)
	t.Cleanup(func() { b.cmd.Process.Kill(); b.cmd.Wait() })
	base := "http://" + b.addr
	good := map[string]string{"Authorization": "Bearer " + token}
	now := time.Now().UnixMilli()
	publish := fmt.Sprintf(`{"tags":{"name":"authtest"},"metrics":[{"tags":{"atlas.dstype":"gauge"},"timestamp":%d,"value":1}]}`, now)

	if code, body := do(t, "GET", base+"/healthz", "", nil); code != 200 {
		t.Errorf("/healthz without a token = %d %s", code, body)
	}
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": token}} {
		for _, path := range []string{"/api/v1/tags", "/api/v1/graph?q=name,authtest,:eq", "/api/services", "/metrics", "/debug/pprof/"} {
			code, body := do(t, "GET", base+path, "", hdr)
			var e struct{ Type, Message string }
			if code != 401 || json.Unmarshal([]byte(body), &e) != nil || e.Type != "error" || !strings.Contains(e.Message, "Bearer") {
				t.Errorf("GET %s with %v = %d %s, want a JSON 401", path, hdr, code, body)
			}
		}
		if code, _ := do(t, "POST", base+"/api/v1/publish", publish, hdr); code != 401 {
			t.Errorf("publish with %v = %d, want 401", hdr, code)
		}
		if code, _ := do(t, "POST", "http://"+otlpHTTP+"/v1/traces", "", mergeHdr(hdr, map[string]string{"Content-Type": "application/x-protobuf"})); code != 401 {
			t.Errorf("OTLP/HTTP with %v = %d, want 401", hdr, code)
		}
	}
	if code, body := do(t, "GET", base+"/api/v1/tags", "", good); code != 200 {
		t.Errorf("tags with the token = %d %s", code, body)
	}
	// The UI's page and assets hold no data: a browser loads them, then the
	// page asks for the token. Its API calls need the token like any other.
	for _, path := range []string{"/ui/", "/ui/explore?q=name,x,:eq", "/ui/assets/app.js"} {
		if code, body := do(t, "GET", base+path, "", nil); code != 200 {
			t.Errorf("GET %s without a token = %d %.200s, want 200", path, code, body)
		}
	}
	if code, _ := do(t, "GET", base+"/api/v1/dashboards", "", nil); code != 401 {
		t.Errorf("dashboards without a token = %d, want 401", code)
	}
	// Streams take the token as access_token (browsers cannot set headers
	// on a WebSocket or an EventSource); no other endpoint does.
	if code, _ := do(t, "GET", base+"/api/v1/tags?access_token="+token, "", nil); code != 401 {
		t.Errorf("tags with access_token = %d, want 401 (only streams take it)", code)
	}
	if code, _ := do(t, "GET", base+"/api/v1/stream/sse?q=name,x,:eq&access_token=wrong", "", nil); code != 401 {
		t.Errorf("stream with a wrong access_token = %d, want 401", code)
	}
	sse, err := http.NewRequest("GET", base+"/api/v1/stream/sse?q=name,x,:eq&access_token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	sseCtx, sseCancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := http.DefaultClient.Do(sse.WithContext(sseCtx))
	if err != nil {
		t.Fatalf("stream with access_token: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("stream with access_token = %d, want 200", resp.StatusCode)
	}
	sseCancel()
	resp.Body.Close()
	if code, body := do(t, "POST", base+"/api/v1/publish", publish, mergeHdr(good, map[string]string{"Origin": "http://evil.example"})); code != 403 {
		t.Errorf("cross-site publish = %d %s, want 403", code, body)
	}
	if code, body := do(t, "POST", base+"/api/v1/publish", publish, mergeHdr(good, map[string]string{"Sec-Fetch-Site": "cross-site"})); code != 403 {
		t.Errorf("cross-site (Sec-Fetch-Site) publish = %d %s, want 403", code, body)
	}
	if code, body := do(t, "POST", base+"/api/v1/publish", publish, mergeHdr(good, map[string]string{"Origin": base})); code != 200 {
		t.Errorf("same-origin publish = %d %s, want 200", code, body)
	}
	req, _ := crashTraceRequest(1)
	if code, body := do(t, "POST", "http://"+otlpHTTP+"/v1/traces", string(req), mergeHdr(good, map[string]string{"Content-Type": "application/x-protobuf"})); code != 200 {
		t.Errorf("OTLP/HTTP with the token = %d %s", code, body)
	}

	conn, err := grpc.NewClient(otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = client.Export(ctx, grpcTraces(t, 2))
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("OTLP/gRPC without a token: %v, want Unauthenticated", err)
	}
	_, err = client.Export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), grpcTraces(t, 3))
	if err != nil {
		t.Errorf("OTLP/gRPC with the token: %v", err)
	}

	// lib's publisher with the token: its datapoint is stored.
	reg := lib.NewRegistry(lib.RegistryOptions{})
	reg.Gauge("authlib").Set(7)
	pub, err := lib.NewPublisher(reg, lib.PublisherOptions{URI: base + "/api/v1/publish", Step: time.Second, AuthToken: token, NoEnvTags: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatalf("publish with lib and the token: %v", err)
	}
	_, body := do(t, "GET", base+"/api/v1/tags/name", "", good)
	if !strings.Contains(body, "authlib") {
		t.Errorf("lib's datapoint not stored: tags/name = %s", body)
	}
}

func grpcTraces(t *testing.T, n int) ptraceotlp.ExportRequest {
	t.Helper()
	b, _ := crashTraceRequest(n)
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		t.Fatal(err)
	}
	return req
}

func mergeHdr(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestCrossSiteWithoutToken: without a token, reads are open, and changes
// from another site are still refused.
func TestCrossSiteWithoutToken(t *testing.T) {
	t.Parallel()
	h := withAccess("", nil, nil)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	f := func(method, origin, site string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://sextant.local:7101/api/v1/dashboards/x", bytes.NewReader(nil))
		req.Host = "sextant.local:7101"
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		rec := &recorder{h: http.Header{}}
		h.ServeHTTP(rec, req)
		if rec.code != want {
			t.Errorf("%s from origin %q site %q = %d, want %d", method, origin, site, rec.code, want)
		}
	}
	f("GET", "http://evil.example", "cross-site", 204)
	f("PUT", "", "", 204)
	f("PUT", "http://sextant.local:7101", "same-origin", 204)
	f("PUT", "http://evil.example", "", 403)
	f("DELETE", "", "cross-site", 403)
	f("POST", "null", "", 403)
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(c int) { r.code = c }
