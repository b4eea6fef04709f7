package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Prometheus's stand-ins for "no bound" in times (what its Go client sends
// for an open range).
const (
	promMinTime = "-292273086-05-16T16:47:06Z"
	promMaxTime = "292277025-08-18T07:12:54.999999999Z"
)

// maxPromTime bounds accepted times (ms) so that arithmetic on them
// cannot overflow: about ±292 million years, far past any data.
const maxPromTime = int64(1) << 62 / 1000

// ParsePromTime parses a Prometheus API time: Unix seconds with an
// optional fraction (1700000000.123) or RFC 3339 (2023-11-14T22:13:20Z).
// It returns Unix ms.
func ParsePromTime(s string) (int64, error) {
	switch s {
	case promMinTime:
		return -maxPromTime, nil
	case promMaxTime:
		return maxPromTime, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ms := math.Round(f * 1000)
		if math.IsNaN(ms) || ms > float64(maxPromTime) || ms < -float64(maxPromTime) {
			return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		return int64(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
	}
	ms := t.UnixMilli()
	if ms > maxPromTime || ms < -maxPromTime {
		return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
	}
	return ms, nil
}

// ParsePromDuration parses a Prometheus API duration: seconds with an
// optional fraction (15, 0.5) or a Prometheus duration (1m30s, 5m, 1h).
// It returns ms.
func ParsePromDuration(s string) (int64, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ms := math.Round(f * 1000)
		if math.IsNaN(ms) || math.Abs(ms) > float64(maxPromTime) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return int64(ms), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return time.Duration(d).Milliseconds(), nil
}

// unescapeLabelName decodes Prometheus's U__ escaping of label names in
// URL paths (U__nf_2e_app is nf.app): "__" is "_", "_hex_" a code point.
func unescapeLabelName(s string) string {
	rest, ok := strings.CutPrefix(s, "U__")
	if !ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(rest) && rest[i+1] == '_' {
			b.WriteByte('_')
			i++
			continue
		}
		end := strings.IndexByte(rest[i+1:], '_')
		if end < 0 {
			return s
		}
		r, err := strconv.ParseUint(rest[i+1:i+1+end], 16, 32)
		if err != nil {
			return s
		}
		b.WriteRune(rune(r))
		i += end + 1
	}
	return b.String()
}
