package lib_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocs keeps docs/lib.md honest: every Go block on the page must be
// (a part of) a runnable example that go test runs and checks.
func TestDocs(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("../docs/lib.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples strings.Builder
	for _, f := range []string{"example_test.go", "trace/example_test.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples.WriteString(squash(string(b)))
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(page), -1)
	if len(blocks) < 6 {
		t.Fatalf("docs/lib.md has %d Go blocks; the page lost its examples", len(blocks))
	}
	for _, b := range blocks {
		if !strings.Contains(examples.String(), squash(b[1])) {
			t.Errorf("this block of docs/lib.md is not in lib's examples:\n%s", b[1])
		}
	}
}

// squash drops indentation and blank lines, which differ between the
// page and the example functions.
func squash(s string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
