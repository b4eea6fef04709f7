package lib_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps: lib is imported by applications; it must never pull in the
// server, and beyond the standard library only the OpenTelemetry SDK.
func TestDeps(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(d, "github.com/sextant-dev/sextant/lib"):
		case strings.HasPrefix(d, "go.opentelemetry.io/"):
		default:
			t.Errorf("lib depends on %s: lib uses only the standard library and the OpenTelemetry SDK", d)
		}
	}
}
