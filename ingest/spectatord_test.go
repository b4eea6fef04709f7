package ingest

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestParseSDLine(t *testing.T) {
	t.Parallel()
	f := func(in string, typ byte, option, name string, v float64, tagsWant string) {
		t.Helper()
		l, ts, err := parseSDLine([]byte(in), nil)
		if err != nil {
			t.Fatalf("parseSDLine(%q): %v", in, err)
		}
		if l.typ != typ || l.option != option || l.name != name || l.value != v || tags.Set(ts).String() != tagsWant {
			t.Errorf("parseSDLine(%q) = %c %q %q %v %s", in, l.typ, l.option, l.name, l.value, tags.Set(ts))
		}
	}
	f("c:server.requests,status=200,route=/cart:1", 'c', "", "server.requests", 1, "{status=200, route=/cart}")
	f("g,300:queue:7.5\r", 'g', "300", "queue", 7.5, "{}")
	f("X,1543160297100:mono:42", 'X', "1543160297100", "mono", 42, "{}")
	f("t:lat,instance=127.0.0.1:9100:0.25", 't', "", "lat", 0.25, "{instance=127.0.0.1:9100}") // a colon in a value
	bad := func(in, want string) {
		t.Helper()
		if _, _, err := parseSDLine([]byte(in), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseSDLine(%q) = %v, want an error with %q", in, err, want)
		}
	}
	bad("", "expected type:name")
	bad("c:name", "expected type:name")
	bad("z:name:1", "unknown meter type")
	bad("c:name:abc", "invalid value")
	bad("c:name:NaN", "invalid value")
	bad("c::1", "expected type:name")
	bad("c:name,k:1", "not key=value")
}

// TestSpectatorDGauges: gauges report their last value every step until
// their TTL runs out; age gauges report the seconds since the last success.
func TestSpectatorDGauges(t *testing.T) {
	t.Parallel()
	clock := now
	e := newEnv(t, func(o *Options) { o.Now = func() int64 { return clock } })
	sd, err := NewSpectatorD(e.handler, SpectatorDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	ctx := context.Background()
	clock = now - 30_000 // in the step that ends at now
	pts, bad := sd.parse([]byte("g,61:sd.gauge:5\nA:sd.age:0\ng:sd.long:3"), true)
	if bad.count > 0 {
		t.Fatal(bad.messages)
	}
	if err := sd.write(ctx, pts); err != nil {
		t.Fatal(err)
	}
	for _, c := range []int64{now, now + minute, now + 2*minute, now + 3*minute} {
		clock = c
		sd.tick(ctx)
	}
	// e.value(t) reads the step that starts at t.
	for _, tc := range []struct {
		name string
		t    int64
		want float64
	}{
		{"sd.gauge", now - minute, 5},
		{"sd.gauge", now, 5},          // reported for the step after it was set
		{"sd.gauge", now + minute, 5}, // the TTL (61 s) ends in this step
		{"sd.gauge", now + 2*minute, -1},
		{"sd.long", now + 2*minute, 3}, // 15 min by default
		{"sd.age", now + 2*minute, 150},
	} {
		if got := e.value(tc.t, "name", tc.name); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s at %+d ms: %v, want %v", tc.name, tc.t-now, got, tc.want)
		}
	}
}

func FuzzSpectatorDLine(f *testing.F) {
	for _, s := range []string{"c:a,b=c:1", "g,300:q:7", "X,1543160297100:m:4", "T:t:0.1", "D:d:100", "A:a:0",
		"t:x,a=b,c=d:1e3", "m:max:-1", "C:c:\xff", ":::"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := sdMeters{policy: TagPolicy{}.withDefaults(), step: 60_000, gauges: map[string]*sdGauge{}, maxGauges: 10}
		l, ts, err := parseSDLine(b, nil)
		if err != nil {
			return
		}
		ts = append(ts, tags.Tag{Key: tags.NameKey, Value: l.name})
		pts, _ := m.add(nil, l, tags.Set(ts).Normalize(), now)
		pts = m.tick(pts, now+60_000)
		for _, p := range pts {
			if p.Tags.Name() != l.name {
				t.Fatalf("datapoint %v lost the name %q", p.Tags, l.name)
			}
		}
	})
}

func FuzzSpectatorBatch(f *testing.F) {
	for _, s := range []string{`[4,"name","c","statistic","count",2,0,1,2,3,0,5]`, `[1,"name",1,0,0,10,"NaN"]`,
		`[0]`, `[2,"a","b",99,0,1,0,1]`, `[]`, `[1.5]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := decodeSpectatorBatch(b, 1000)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.op != batchOpAdd && m.op != batchOpMax {
				t.Fatalf("op %d accepted", m.op)
			}
		}
	})
}
