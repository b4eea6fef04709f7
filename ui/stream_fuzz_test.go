package ui

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/sextant-dev/sextant/query/live"
)

// FuzzParseClientMessage: the client message parser never panics, and
// what it accepts is a subscribe or unsubscribe with an id (and for a
// subscribe an expression and non-negative durations).
func FuzzParseClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","id":"a","q":"name,sps,:eq,:sum","step":"60s","backfill":"1h"}`,
		`{"type":"subscribe","id":"b","q":"name,sps,:eq,(,nf.app,),:by","step":60000,"backfill":"PT1H"}`,
		`{"type":"unsubscribe","id":"a"}`,
		`{"type":"subscribe","id":"","q":"x"}`,
		`{"type":"subscribe","id":"c","q":"x","step":"-5s"}`,
		`{"type":"subscribe","id":"c","q":"x","step":1e300}`,
		`{"type":"hello"}`,
		`{"type":"subscribe","id":"d","q":"x","step":null,"backfill":[1]}`,
		`{} {}`,
		`[`,
		``,
		`"subscribe"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseClientMessage(data)
		if err != nil {
			if _, ok := err.(*fieldError); !ok {
				t.Fatalf("error %T %v is not a *fieldError", err, err)
			}
			return
		}
		if m.ID == "" || (m.Type != "subscribe" && m.Type != "unsubscribe") {
			t.Fatalf("accepted %q as %+v", data, m)
		}
		if m.Type == "subscribe" && (m.Q == "" || m.Step < 0 || m.Backfill < 0) {
			t.Fatalf("accepted %q as %+v", data, m)
		}
		// What the server sends back about it is valid JSON.
		out := appendDiagnostic(nil, m.ID, "error", m.Q, 0)
		if !json.Valid(out) {
			t.Fatalf("diagnostic %q is not valid JSON", out)
		}
	})
}

// TestEncodings: the messages the server writes are valid JSON and keep
// NaN and infinities as strings.
func TestEncodings(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", "quote\" back\\slash", "ctl\x01\n", "bad utf8 \xff", "<script>&", "line\u2028sep", "日本"} {
		b := appendDiagnostic(nil, s, "warn", s, 3)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("appendDiagnostic(%q) = %s: %v", s, b, err)
		}
		if want := toValidUTF8(s); m["message"] != want {
			t.Errorf("message %q round-trips as %q", s, m["message"])
		}
	}
}

// TestTimeseriesEncoding: values keep their bits, NaN and infinities are
// strings, and the message is what api.md says.
func TestTimeseriesEncoding(t *testing.T) {
	t.Parallel()
	l := &live.Line{ID: "1f", Label: "sum(x)", Tags: map[string]string{"name": "x", "a": "b"}, Start: 60000, End: 300000, Step: 60000,
		Values: []float64{1.5, math.NaN(), math.Inf(1), math.Inf(-1), 1e-300}}
	got := string(appendTimeseries(nil, "s1", l))
	want := `{"type":"timeseries","subscription":"s1","id":"1f","label":"sum(x)","tags":{"a":"b","name":"x"},` +
		`"start":60000,"end":300000,"step":60000,"data":{"type":"array","values":[1.5,"NaN","Infinity","-Infinity",1.0E-300]}}`
	if got != want {
		t.Errorf("appendTimeseries =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Errorf("not valid JSON: %s", got)
	}
}

func toValidUTF8(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
