package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTestRules(t *testing.T) {
	t.Parallel()
	f := func(file string, wantCode int, wantOut string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run([]string{"test", "rules", file}, env(), &out, &errb)
		if code != wantCode || !strings.Contains(out.String()+errb.String(), wantOut) {
			t.Errorf("sextant test rules %s = %d\n%s%s\nwant %d and %q", file, code, out.String(), errb.String(), wantCode, wantOut)
		}
	}
	f("testdata/rules/hosts_test.yaml", 0, "PASS testdata/rules/hosts_test.yaml (1 tests)")
	f("testdata/rules/failing_test.yaml", 1, "alert HighCPU at 6m:\n"+
		`  + got  {alertname="HighCPU", host="a", name="cpu", severity="page"} annotations {summary="cpu of a is high"}`)
	f("testdata/rules/missing.yaml", 2, "no such file")
}
