package tsdbtest

import (
	"os/exec"
	"strings"
	"testing"
)

// Deps returns the non-standard packages pkg depends on, transitively.
func Deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// Imports returns the packages that the packages matching pattern import
// directly.
func Imports(t *testing.T, pattern string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, pattern).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	return strings.Fields(string(out))
}

// CheckDeps fails t for every dependency of pkg that bad reports a reason
// for, in the manner of tailscale's deptest.
func CheckDeps(t *testing.T, pkg string, bad func(dep string) string) {
	t.Helper()
	for _, d := range Deps(t, pkg) {
		if why := bad(d); why != "" {
			t.Errorf("%s depends on %s: %s", pkg, d, why)
		}
	}
}
