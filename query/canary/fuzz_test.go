package canary

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies to the decoder and the
// validator: neither may panic, every refusal is a *FieldError naming a
// field, and an accepted request's metrics have both scoped expressions.
func FuzzDecodeRequest(f *testing.F) {
	seed, err := os.ReadFile("testdata/judge.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"baseline":"a,b,:eq","canary":"a,c,:eq","metrics":[{"name":"m","q":"x,y,:eq,(,k,),:by"}]}`))
	f.Add([]byte(`{"baseline":"a,b,:eq","canary":"a,c,:eq","s":"2026-01-01T00:00","e":"s+1h","tz":"US/Pacific","metrics":[{"name":"m","q":"x,y,:eq,:dup,:div","weight":0}]}`))
	f.Add([]byte(`{"metrics":[{"name":"m","q":":frob"}],"thresholds":{"pass":-1}}`))
	f.Add([]byte(`{"interval":"5m","lifetime":"1h","webhook":"http://x/y"}`))
	f.Add([]byte(`nul`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		var fe *FieldError
		if err != nil {
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("DecodeRequest(%q) = %v, not a FieldError", body, err)
			}
			return
		}
		p, err := compile(req, now, step, 1000, 20)
		if err != nil {
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("compile(%q) = %v, not a FieldError", body, err)
			}
			return
		}
		if len(p.metrics) == 0 || p.step <= 0 || p.start >= p.end || p.marginal > p.pass {
			t.Fatalf("accepted %q as %+v", body, p)
		}
		for _, m := range p.metrics {
			if m.base == nil || m.can == nil || m.weight < 0 || math.IsNaN(m.sig) {
				t.Fatalf("accepted metric %+v", m)
			}
		}
		// What was accepted encodes again.
		if _, err := json.Marshal(req); err != nil {
			t.Fatal(err)
		}
	})
}
