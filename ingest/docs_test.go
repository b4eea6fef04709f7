package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDocsExamples runs every curl example of docs/ingest.md against a real
// handler and compares the reply with the documented output.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/ingest.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	blocks := strings.Split(string(doc), "```")
	examples := 0
	for i := 1; i+2 < len(blocks); i += 2 {
		code := blocks[i]
		if !strings.HasPrefix(code, "sh\n") || !strings.Contains(code, "curl") || !strings.Contains(code, "-d '") {
			continue
		}
		out := strings.TrimPrefix(blocks[i+2], "\n")
		_, rest, _ := strings.Cut(code, "-d '")
		body, _, _ := strings.Cut(rest, "'")
		body = strings.ReplaceAll(body, "NOW", fmt.Sprint(now))
		var path string
		for _, f := range strings.Fields(code) {
			if strings.HasPrefix(f, "localhost:") {
				path = f[strings.Index(f, "/"):]
			}
		}
		resp, err := http.Post(e.url+path, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantLines := strings.Split(strings.TrimSpace(out), "\n")
		if g := fmt.Sprint(resp.StatusCode); g != wantLines[len(wantLines)-1] {
			t.Errorf("example %d (%s): status %s, documented %s", examples, path, g, wantLines[len(wantLines)-1])
		}
		switch {
		case len(wantLines) == 1 && len(got) > 0:
			t.Errorf("example %d: undocumented body %s", examples, got)
		case len(wantLines) == 2:
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("example %d: reply is not JSON: %s", examples, got)
			}
			if err := json.Unmarshal([]byte(wantLines[0]), &w); err != nil {
				t.Fatalf("example %d: documented output is not JSON: %s", examples, wantLines[0])
			}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("example %d (%s) differs from the docs (-documented +got):\n%s", examples, path, diff)
			}
		}
		examples++
	}
	if examples < 2 {
		t.Fatalf("found %d examples", examples)
	}
}
