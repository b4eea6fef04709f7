package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// SpectatorD's line protocol (api.md "More ways in"; docs/lib.md): one
// measurement per line, `type[,option]:name[,key=value...]:value`.
//
//	c  counter: the value is added to the step (stored as a per-second rate)
//	C  monotonic counter (also U): a cumulative value, stored as a counter
//	X  monotonic counter with its time: X,<unix ms>:name:value
//	g  gauge: the last value, reported every step until its TTL (15 min, or
//	   g,<seconds>:, at least 5 s) runs out
//	m  max gauge: the largest value of the step
//	t  timer, in seconds: count, totalTime, totalOfSquares, max
//	d  distribution summary: count, totalAmount, totalOfSquares, max
//	T  percentile timer: a timer plus its percentile bucket (T, nanoseconds)
//	D  percentile distribution summary: a summary plus its bucket (D)
//	A  age gauge: the time of the last success in Unix seconds (0: now);
//	   reported every step as the seconds since then
//
// Tags follow the tag policy of the non-Atlas protocols (TagPolicy).

// sdLine is one parsed line. Its strings alias the input.
type sdLine struct {
	typ    byte
	option string
	name   string
	id     string // name and tags as sent, for errors
	value  float64
}

// errors of the line parser; parseSDLine wraps them with the details.
var errSDFormat = errors.New("expected type:name[,key=value...]:value")

// parseSDLine parses one line; its tags are appended to dst.
func parseSDLine(line []byte, dst []tags.Tag) (sdLine, []tags.Tag, error) {
	var l sdLine
	line = bytes.TrimRight(line, "\r")
	i := bytes.IndexByte(line, ':')
	j := bytes.LastIndexByte(line, ':')
	if i <= 0 || j <= i+1 {
		return l, dst, errSDFormat
	}
	head, id, val := line[:i], line[i+1:j], line[j+1:]
	if k := bytes.IndexByte(head, ','); k >= 0 {
		l.option = string(head[k+1:])
		head = head[:k]
	}
	if len(head) != 1 || !strings.ContainsRune("cCUXgmtdTDA", rune(head[0])) {
		return l, dst, fmt.Errorf("unknown meter type %q (c, C, U, X, g, m, t, d, T, D, A)", head)
	}
	l.typ = head[0]
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(val)), 64)
	if err != nil {
		return l, dst, fmt.Errorf("invalid value %q", val)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return l, dst, fmt.Errorf("invalid value %q", val)
	}
	l.value = v
	l.id = string(id)
	parts := strings.Split(l.id, ",")
	l.name = parts[0]
	if l.name == "" {
		return l, dst, errors.New("empty name")
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return l, dst, fmt.Errorf("tag %q is not key=value", p)
		}
		dst = append(dst, tags.Tag{Key: k, Value: v})
	}
	return l, dst, nil
}

// sdMeters turns SpectatorD lines into datapoints. It keeps the gauges and
// age gauges that are reported every step; the caller holds the lock of
// the SpectatorD component around it.
type sdMeters struct {
	policy TagPolicy
	step   int64 // ms
	gauges map[string]*sdGauge
	// maxGauges bounds gauges (and age gauges): past it, new ones are
	// dropped and counted.
	maxGauges int
}

// sdGauge is a gauge or an age gauge: reported every step.
type sdGauge struct {
	tags    tags.Set // owned copy
	value   float64  // gauges: the last value; age gauges: the last success, Unix ms
	age     bool
	expires int64 // Unix ms; 0 for age gauges, which never expire
	written int64 // the step boundary last written
}

// add appends the datapoints of line l (tags in ts, valid, sorted, with
// name) measured at now to pts, and returns them. Gauges and age gauges are
// also remembered for later steps.
func (m *sdMeters) add(pts []tsdb.Datapoint, l sdLine, ts tags.Set, now int64) ([]tsdb.Datapoint, error) {
	stepSec := float64(m.step) / 1000
	with := func(dst string, stat string, extra ...string) tags.Set {
		out := make(tags.Set, 0, len(ts)+2+len(extra)/2)
		out = append(out, ts...)
		out = append(out, tags.Tag{Key: tsdb.DSTypeKey, Value: dst}, tags.Tag{Key: "statistic", Value: stat})
		for i := 0; i+1 < len(extra); i += 2 {
			out = append(out, tags.Tag{Key: extra[i], Value: extra[i+1]})
		}
		return out.Normalize()
	}
	sum := func(stat string, v float64, extra ...string) {
		pts = append(pts, tsdb.Datapoint{Tags: with("sum", stat, extra...), T: now, V: v / stepSec})
	}
	switch l.typ {
	case 'c':
		if l.value < 0 {
			return pts, errors.New("negative counter increment")
		}
		sum(lib.StatCount, l.value)
	case 'C', 'U':
		pts = append(pts, tsdb.Datapoint{Tags: with("counter", lib.StatCount), T: now, V: l.value})
	case 'X':
		t, err := strconv.ParseInt(l.option, 10, 64)
		if err != nil {
			return pts, fmt.Errorf("type X needs its time in Unix ms as the option, got %q", l.option)
		}
		pts = append(pts, tsdb.Datapoint{Tags: with("counter", lib.StatCount), T: t, V: l.value})
	case 'm':
		pts = append(pts, tsdb.Datapoint{Tags: with("gauge", lib.StatMax), T: now, V: l.value})
	case 't', 'T', 'd', 'D':
		if l.value < 0 {
			return pts, errors.New("negative amount")
		}
		total := lib.StatTotalAmount
		if l.typ == 't' || l.typ == 'T' {
			total = lib.StatTotalTime
		}
		sum(lib.StatCount, 1)
		sum(total, l.value)
		sum(lib.StatTotalOfSquares, l.value*l.value)
		pts = append(pts, tsdb.Datapoint{Tags: with("gauge", lib.StatMax), T: now, V: l.value})
		switch l.typ {
		case 'T':
			sum(lib.StatPercentile, 1, lib.StatPercentile, lib.PercentileTag('T', lib.PercentileBucketIndex(int64(l.value*1e9))))
		case 'D':
			sum(lib.StatPercentile, 1, lib.StatPercentile, lib.PercentileTag('D', lib.PercentileBucketIndex(int64(l.value))))
		}
	case 'g', 'A':
		ttl := int64(15 * 60 * 1000)
		if l.typ == 'g' && l.option != "" {
			sec, err := strconv.ParseFloat(l.option, 64)
			if err != nil || !(sec > 0) {
				return pts, fmt.Errorf("invalid gauge TTL %q: seconds expected", l.option)
			}
			ttl = max(int64(sec*1000), 5000)
		}
		g := sdGauge{tags: with("gauge", lib.StatGauge), value: l.value, expires: now + ttl}
		if l.typ == 'A' {
			g.age, g.expires = true, 0
			g.value = l.value * 1000
			if l.value == 0 {
				g.value = float64(now)
			}
		}
		key := g.tags.String()
		old, ok := m.gauges[key]
		if !ok && len(m.gauges) >= m.maxGauges {
			return pts, fmt.Errorf("more than %d gauges", m.maxGauges)
		}
		g.written = normBoundary(now, m.step)
		if ok && old.written > g.written {
			g.written = old.written
		}
		g.tags = g.tags.Clone()
		m.gauges[key] = &g
		pts = append(pts, g.datapoint(now))
	}
	return pts, nil
}

// datapoint is the gauge's value at t.
func (g *sdGauge) datapoint(t int64) tsdb.Datapoint {
	v := g.value
	if g.age {
		v = float64(t-int64(g.value)) / 1000
	}
	return tsdb.Datapoint{Tags: g.tags, T: t, V: v}
}

// tick appends, for the step that ends at boundary b (which just closed),
// the value of every live gauge that was not written in it, and forgets
// expired gauges.
func (m *sdMeters) tick(pts []tsdb.Datapoint, b int64) []tsdb.Datapoint {
	for k, g := range m.gauges {
		if g.expires != 0 && g.expires <= b-m.step {
			delete(m.gauges, k)
			continue
		}
		if g.written >= b {
			continue
		}
		g.written = b
		pts = append(pts, g.datapoint(b))
	}
	return pts
}

// normBoundary is the step boundary t belongs to: t rounded up to a
// multiple of step, as the store rounds gauges.
func normBoundary(t, step int64) int64 {
	if o := t % step; o != 0 {
		if o < 0 {
			o += step
		}
		return t - o + step
	}
	return t
}
