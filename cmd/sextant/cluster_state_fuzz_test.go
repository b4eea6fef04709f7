package main

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/alerting"
)

// TestForwardRoundTrip: alerts forwarded to the notifier arrive as they
// left, NaN values included (JSON has no NaN).
func TestForwardRoundTrip(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"alertname": "HighCPU", "host": "a"}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := []*alerting.Alert{
		{Rule: "HighCPU", Labels: labels, Annotations: map[string]string{"summary": "hot"}, Fingerprint: alerting.Fingerprint(labels),
			StartsAt: start, GeneratorURL: "http://x/ui/alerts/HighCPU", Value: 91.5, TraceIDs: []string{"0af7651916cd43dd8448eb211c80319c"}},
		{Rule: "HighCPU", Labels: labels, Fingerprint: alerting.Fingerprint(labels), StartsAt: start, EndsAt: start.Add(time.Minute), Value: math.NaN()},
	}
	b, err := encodeAlerts(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeAlerts(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("round trip (-sent +received):\n%s", diff)
	}
	for _, bad := range []string{`{"alerts":[{"labels":{},"fingerprint":"x"}]}`, `{"alerts":[{"labels":{"a":"b"}}]}`, `[`} {
		if _, err := decodeAlerts([]byte(bad)); err == nil {
			t.Errorf("decodeAlerts(%s) accepted it", bad)
		}
	}
}

// FuzzDecodeAlerts: no body makes the forward endpoint's decoder panic,
// and what it accepts encodes and decodes to the same alerts.
func FuzzDecodeAlerts(f *testing.F) {
	f.Add([]byte(`{"alerts":[{"rule":"R","labels":{"alertname":"R"},"fingerprint":"f","startsAt":"2026-01-01T00:00:00Z","value":1}]}`))
	f.Add([]byte(`{"alerts":[{"labels":{"a":"b"},"fingerprint":"f","endsAt":"2026-01-01T00:00:00Z","traceIDs":["x"]}]}`))
	f.Add([]byte(`{"alerts":[]}`))
	f.Add([]byte(`{"alerts":null}`))
	f.Add([]byte(`{"alerts":[{"labels":{"a":"b"},"fingerprint":"f","value":1e400}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		alerts, err := decodeAlerts(b)
		if err != nil {
			return
		}
		again, err := encodeAlerts(alerts)
		if err != nil {
			t.Fatalf("encode what was decoded: %v", err)
		}
		back, err := decodeAlerts(again)
		if err != nil {
			t.Fatalf("decode what was encoded: %v", err)
		}
		if diff := cmp.Diff(alerts, back, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
