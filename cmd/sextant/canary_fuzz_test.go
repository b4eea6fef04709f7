package main

import (
	"encoding/json"
	"testing"

	"github.com/sextant-dev/sextant/query/canary"
)

// FuzzCanaryYAML feeds arbitrary files to the gate's YAML reader: it must
// not panic, and what it accepts is a JSON body the server's strict
// decoder accepts too.
func FuzzCanaryYAML(f *testing.F) {
	f.Add([]byte("baseline: nf.cluster,a,:eq\ncanary: nf.cluster,b,:eq\nmetrics:\n  - {name: l, q: 'name,l,:eq,:avg', direction: increase, critical: true, weight: 2}\nthresholds: {pass: 75, marginal: 50}\n"))
	f.Add([]byte(`{"baseline":"a,b,:eq","metrics":[{"name":"x","q":"y"}]}`))
	f.Add([]byte("metrics: {1: 2}\n"))
	f.Add([]byte("s: 2026-01-01T00:00:00Z\n"))
	f.Add([]byte("weight: .nan\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, src []byte) {
		body, err := canaryYAML(src)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("canaryYAML(%q) = invalid JSON %q", src, body)
		}
		if _, err := canary.DecodeRequest(body); err != nil {
			t.Fatalf("canaryYAML(%q) accepted a body the server refuses: %v", src, err)
		}
	})
}
