package ingest

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

type decoded struct {
	Common  tags.Set
	Metrics []decodedMetric
}

type decodedMetric struct {
	Tags tags.Set
	T    int64
	V    float64
	HasT bool
}

func decodeString(t *testing.T, body string) (decoded, error) {
	t.Helper()
	var d publishDecoder
	d.reset([]byte(body), DefaultRules(), 100, nil)
	err := d.decode()
	var out decoded
	out.Common = tags.Set(d.common).Clone()
	for i := range d.metrics {
		m := &d.metrics[i]
		out.Metrics = append(out.Metrics, decodedMetric{Tags: tags.Set(d.merge(nil, m)).Clone(), T: m.t, V: m.v, HasT: m.hasT})
	}
	return out, err
}

func TestDecodePublish(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	for _, tc := range []struct {
		name, body string
		want       []decodedMetric
	}{
		{"basic", `{"tags":{"nf.app":"www"},"metrics":[{"tags":{"name":"cpu"},"timestamp":1700000000000,"value":42.5}]}`,
			[]decodedMetric{{tags.New("name", "cpu", "nf.app", "www"), 1700000000000, 42.5, true}}},
		{"metrics before tags, override", ` { "metrics" : [ { "value" : 1 , "tags" : { "name" : "a" , "nf.app" : "own" } , "timestamp" : 5 } ] , "tags" : { "nf.app" : "common" , "z" : "1" } } `,
			[]decodedMetric{{tags.New("name", "a", "nf.app", "own", "z", "1"), 5, 1, true}}},
		{"NaN and strings", `{"metrics":[{"tags":{"name":"a"},"timestamp":1,"value":"NaN"},{"tags":{"name":"b"},"timestamp":2,"value":"1e3"},{"tags":{"name":"c"},"timestamp":3,"value":null}]}`,
			[]decodedMetric{{tags.New("name", "a"), 1, nan, true}, {tags.New("name", "b"), 2, 1000, true}, {tags.New("name", "c"), 3, nan, true}}},
		{"legacy start and values", `{"metrics":[{"tags":{"name":"a"},"start":7,"values":[3,4]},{"tags":{"name":"b"},"start":8,"values":"5"}]}`,
			[]decodedMetric{{tags.New("name", "a"), 7, 3, true}, {tags.New("name", "b"), 8, 5, true}}},
		{"unknown fields and escapes", `{"x":{"y":[1,{"z":null}],"w":true},"metrics":[{"extra":[false],"tags":{"name":"a\u0062\"c","k":"tab\there"},"timestamp":1.7e3,"value":-0.5}]}`,
			[]decodedMetric{{tags.New("name", "ab\"c", "k", "tab\there"), 1700, -0.5, true}}},
		{"no timestamp", `{"metrics":[{"tags":{"name":"a"},"value":1}]}`,
			[]decodedMetric{{tags.New("name", "a"), 0, 1, false}}},
		{"numeric tag value", `{"metrics":[{"tags":{"name":"a","port":8080},"timestamp":1,"value":1}]}`,
			[]decodedMetric{{tags.New("name", "a", "port", "8080"), 1, 1, true}}},
		{"empty", `{"metrics":[]}`, nil},
		{"surrogate pair", `{"metrics":[{"tags":{"name":"\ud83d\ude00"},"timestamp":1,"value":1}]}`,
			[]decodedMetric{{tags.New("name", "😀"), 1, 1, true}}},
	} {
		got, err := decodeString(t, tc.body)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got.Metrics, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestDecodePublishErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{``, "offset 0: unexpected end, expected '{'"},
		{`[]`, "offset 0: expected '{', found '['"},
		{`{"metrics":[{"tags":{"name":"a"},"timestamp":1,"value":1}`, "unexpected end"},
		{`{"metrics":[{"tags":{"name":"a"}"timestamp":1}]}`, "expected ',' or '}'"},
		{`{"metrics":[{"value":abc}]}`, "invalid number"},
		{`{"metrics":[{"value":"abc"}]}`, `value "abc" is not a number`},
		{`{"metrics":[{"timestamp":"x"}]}`, "timestamp is not an integer"},
		{`{"metrics":[]} x`, "data after the end"},
		{`{"tags":{"a":"unterminated}}`, "unterminated string"},
		{`{"tags":{"a":"bad \x escape"}}`, "invalid escape"},
		{`{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "nested too deeply"},
	} {
		_, err := decodeString(t, tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decode(%.40q) = %v, want an error containing %q", tc.body, err, tc.want)
		}
	}
	var d publishDecoder
	d.reset([]byte(`{"metrics":[{},{},{}]}`), DefaultRules(), 2, nil)
	if err := d.decode(); err == nil || !strings.Contains(err.Error(), "more than 2 datapoints") {
		t.Errorf("over the datapoint limit: %v", err)
	}
	// Tags beyond the limit are counted, not kept.
	body := `{"metrics":[{"tags":{` + strings.Repeat(`"k":"v",`, 100) + `"name":"a"},"timestamp":1}]}`
	d.reset([]byte(body), DefaultRules(), 10, nil)
	if err := d.decode(); err != nil || !d.metrics[0].overflow || len(d.raw) != 31 {
		t.Errorf("101 tags: err %v, overflow %v, kept %d", err, d.metrics[0].overflow, len(d.raw))
	}
}

func FuzzPublishDecode(f *testing.F) {
	f.Add([]byte(`{"tags":{"nf.app":"www"},"metrics":[{"tags":{"name":"cpu"},"timestamp":1700000000000,"value":42.5}]}`))
	f.Add([]byte(`{"metrics":[{"tags":{"name":"a\u0062"},"start":7,"values":[3,"NaN",null]}],"x":{"y":[true,false,null]}}`))
	rules := DefaultRules()
	f.Fuzz(func(t *testing.T, b []byte) {
		var d publishDecoder
		d.reset(b, rules, 1000, nil)
		if err := d.decode(); err != nil {
			return
		}
		// Bounded: what is kept never exceeds the limits.
		if len(d.metrics) > 1000 {
			t.Fatalf("%d metrics kept, limit 1000", len(d.metrics))
		}
		for i := range d.metrics {
			m := &d.metrics[i]
			if m.end-m.start > 31 {
				t.Fatalf("metric kept %d tags", m.end-m.start)
			}
			d.merge(nil, m)
		}
	})
}
