package lib_test

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/sextant-dev/sextant/"

func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// TestDeps: lib is imported by applications, so it never pulls in the
// server. The metrics side (lib, lib/wire) and lib/partial use only the
// standard library; lib/trace adds the OpenTelemetry SDK and what its OTLP
// exporter needs (protobuf and gRPC status types, backoff, logr).
func TestDeps(t *testing.T) {
	t.Parallel()
	for _, d := range deps(t, "./", "./wire", "./partial") {
		if d != mod+"lib" && d != mod+"lib/wire" && d != mod+"lib/partial" {
			t.Errorf("lib depends on %s: the metrics side and lib/partial use only the standard library", d)
		}
	}
	otel := []string{
		mod + "lib",
		"go.opentelemetry.io/",
		"google.golang.org/protobuf", "google.golang.org/grpc", "google.golang.org/genproto/",
		"github.com/grpc-ecosystem/grpc-gateway/", "github.com/cenkalti/backoff/",
		"github.com/go-logr/", "github.com/google/uuid", "github.com/cespare/xxhash/",
		"golang.org/x/net/", "golang.org/x/sys/", "golang.org/x/text/",
	}
	for _, d := range deps(t, "./trace") {
		ok := false
		for _, p := range otel {
			ok = ok || strings.HasPrefix(d, p)
		}
		if !ok {
			t.Errorf("lib/trace depends on %s: it uses the OpenTelemetry SDK and its exporter's dependencies only", d)
		}
	}
}
