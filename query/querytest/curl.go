package querytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// nowExpr is the placeholder the docs write for the current time: the
// examples must show fixed text, while the server's data is recent.
var nowExpr = regexp.MustCompile(`NOW(-[0-9]+)?`)

// Examples returns the curl examples of a documentation page: each sh
// block that runs curl, and the block after it, the documented output.
func Examples(doc string) (cmds, outputs []string) {
	// Splitting on the fence alternates text and code: odd elements are
	// code blocks, and the output of a command is the next code block.
	blocks := strings.Split(doc, "```")
	for i := 1; i+2 < len(blocks); i += 2 {
		code := blocks[i]
		if !strings.HasPrefix(code, "sh\n") || !strings.Contains(code, "curl") {
			continue
		}
		cmds = append(cmds, code)
		outputs = append(outputs, strings.TrimPrefix(blocks[i+2], "\n"))
	}
	return cmds, outputs
}

// Curl performs the request a documented curl command describes: the
// URL after localhost:7101 (or :4318), -d for a POST body, -H headers,
// -o /dev/null to drop the body and -w for the trailer (%{http_code},
// %{content_type}). NOW and NOW-<ms> in the command become now (Unix
// ms) and earlier times.
func Curl(t *testing.T, base, cmd string, now int64) string {
	t.Helper()
	cmd = nowExpr.ReplaceAllStringFunc(cmd, func(m string) string {
		v := now
		if i := strings.IndexByte(m, '-'); i > 0 {
			d, _ := strconv.ParseInt(m[i+1:], 10, 64)
			v -= d
		}
		return strconv.FormatInt(v, 10)
	})
	// The docs single-quote every argument that matters: the URL, the
	// body, the headers and the trailer. Which one a quoted string is
	// follows from the flag before it. The first quoted string is
	// never a body, since the URL comes first.
	quoted := regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(cmd, -1)
	var target, body, trailer string
	header := http.Header{}
	for j, q := range quoted {
		switch {
		case strings.HasPrefix(q[1], "localhost:7101"), strings.HasPrefix(q[1], "localhost:4318"):
			target = base + q[1][len("localhost:7101"):]
		case j > 0 && strings.Contains(cmd, "-d '"+q[1]):
			body = q[1]
		case strings.Contains(cmd, "-H '"+q[1]):
			k, v, _ := strings.Cut(q[1], ":")
			header.Set(k, strings.TrimSpace(v))
		case strings.Contains(cmd, "-w '"+q[1]):
			trailer = q[1]
		}
	}
	// An unquoted URL (curl localhost:7101/api/v1/tags).
	if target == "" {
		for _, f := range strings.Fields(cmd) {
			if strings.HasPrefix(f, "localhost:7101") || strings.HasPrefix(f, "localhost:4318") {
				target = base + f[len("localhost:7101"):]
			}
		}
	}
	method := http.MethodGet
	if body != "" {
		method = http.MethodPost
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", "application/json")
		}
	}
	req, err := http.NewRequest(method, target, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	// The server is the test's own (base); a transport error is a
	// failure of the test, not a documented output.
	resp, err := http.DefaultClient.Do(req)
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

// SameOutput compares outputs line by line, JSON lines by value.
func SameOutput(want, got string) bool {
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
		// A JSON line compares by value, so the docs may order keys or
		// space them for reading; any other line must match exactly.
		if json.Unmarshal([]byte(wl[i]), &w) != nil || json.Unmarshal([]byte(gl[i]), &g) != nil || !cmp.Equal(w, g) {
			return false
		}
	}
	return true
}
