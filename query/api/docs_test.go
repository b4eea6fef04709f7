package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
)

// docNow is NOW in the documented examples: 2024-05-01T00:00:00Z.
const docNow = int64(1714521600000)

var nowExpr = regexp.MustCompile(`NOW(-[0-9]+)?`)

// TestDocsExamples runs every curl example of the query API pages against
// a real server (publish, store, graph/tags/expr APIs) with its clock at
// NOW, and compares each reply with the documented output.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	store := querytest.Open(t, 60_000, docNow)
	ing, err := ingest.New(ingest.Options{Appender: store, Step: 60_000, Now: func() int64 { return docNow }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Options{Querier: store, StorageStep: 60_000, Now: func() time.Time { return time.UnixMilli(docNow) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ing.Register(mux)
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	examples := 0
	for _, page := range []string{"graph.md", "tags.md", "expr.md"} {
		doc, err := os.ReadFile("../../docs/" + page)
		if err != nil {
			t.Fatal(err)
		}
		blocks := strings.Split(string(doc), "```")
		for i := 1; i+2 < len(blocks); i += 2 {
			code := blocks[i]
			if !strings.HasPrefix(code, "sh\n") || !strings.Contains(code, "curl") {
				continue
			}
			want := strings.TrimPrefix(blocks[i+2], "\n")
			got := runCurl(t, srv.URL, code)
			if os.Getenv("DOCS_PRINT") != "" {
				fmt.Printf("---- %s example %d\n%s\n%s", page, examples, code, got)
			} else if !sameOutput(want, got) {
				t.Errorf("%s example %d:\n%s\ngot:\n%s\ndocumented:\n%s", page, examples, code, got, want)
			}
			examples++
		}
	}
	if examples < 10 {
		t.Fatalf("found %d examples", examples)
	}
}

// runCurl performs the request a documented curl command describes: the
// URL after localhost:7101, -d for a POST body, -o /dev/null to drop the
// body and -w for the trailer (%{http_code}, %{content_type}).
func runCurl(t *testing.T, base, cmd string) string {
	t.Helper()
	cmd = nowExpr.ReplaceAllStringFunc(cmd, func(m string) string {
		v := docNow
		if i := strings.IndexByte(m, '-'); i > 0 {
			d, _ := strconv.ParseInt(m[i+1:], 10, 64)
			v -= d
		}
		return strconv.FormatInt(v, 10)
	})
	quoted := regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(cmd, -1)
	var target, body, trailer string
	for j, q := range quoted {
		switch {
		case strings.HasPrefix(q[1], "localhost:7101"):
			target = base + strings.TrimPrefix(q[1], "localhost:7101")
		case j > 0 && strings.Contains(cmd, "-d '"+q[1]):
			body = q[1]
		case strings.Contains(cmd, "-w '"+q[1]):
			trailer = q[1]
		}
	}
	if target == "" {
		for _, f := range strings.Fields(cmd) {
			if strings.HasPrefix(f, "localhost:7101") {
				target = base + strings.TrimPrefix(f, "localhost:7101")
			}
		}
	}
	var resp *http.Response
	var err error
	if body != "" {
		resp, err = http.Post(target, "application/json", bytes.NewReader([]byte(body)))
	} else {
		resp, err = http.Get(target)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := ""
	if !strings.Contains(cmd, "-o /dev/null") {
		out = string(b)
	}
	trailer = strings.NewReplacer(`%{http_code}`, strconv.Itoa(resp.StatusCode), `%{content_type}`, resp.Header.Get("Content-Type"), `\n`, "\n").Replace(trailer)
	return out + trailer
}

// sameOutput compares outputs, JSON bodies by value.
func sameOutput(want, got string) bool {
	if want == got {
		return true
	}
	wl, gl := strings.Split(strings.TrimSpace(want), "\n"), strings.Split(strings.TrimSpace(got), "\n")
	if len(wl) != len(gl) {
		return false
	}
	for i := range wl {
		if wl[i] == gl[i] {
			continue
		}
		var w, g any
		if json.Unmarshal([]byte(wl[i]), &w) != nil || json.Unmarshal([]byte(gl[i]), &g) != nil || !cmp.Equal(w, g) {
			return false
		}
	}
	return true
}
