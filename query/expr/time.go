package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Durations beyond this are refused: they overflow int64 milliseconds
// arithmetic long before they mean anything.
const maxDurationMs = 1000 * 365 * 24 * 3600_000 // 1000 years

// ParseDuration parses a duration in the graph syntax: <n><unit> with
// units ns, us (μs), ms, s, m, h, d, w, month(s) (30 d) and y (365 d) and
// their long forms (second, minutes, hours, days, weeks, years ...), or an
// ISO-8601 duration such as PT1H or P2DT6H5M. It returns milliseconds;
// sub-millisecond durations truncate.
func ParseDuration(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q: empty", in)
	}
	// An ISO duration may carry a sign (-PT1H); the graph syntax may
	// not: its sign belongs to the time expression around it (e-1h).
	if s[0] == 'P' || s[0] == 'p' || ((s[0] == '-' || s[0] == '+') && len(s) > 1 && (s[1] == 'P' || s[1] == 'p')) {
		return parseISODuration(in, s)
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	// At most 15 digits: ParseInt cannot fail, and the product below
	// cannot overflow before the range check.
	if i == 0 || i > 15 {
		return 0, fmt.Errorf("invalid duration %q: want a number and a unit such as 5m or PT1H", in)
	}
	n, _ := strconv.ParseInt(s[:i], 10, 64)
	unit := strings.TrimSpace(s[i:])
	// The unit's length in nanoseconds, so that ns and us durations
	// are representable before truncating to milliseconds.
	var ns float64
	switch unit {
	case "ns", "nanosecond", "nanoseconds":
		ns = 1
	case "us", "μs", "microsecond", "microseconds":
		ns = 1e3
	case "ms", "millisecond", "milliseconds":
		ns = 1e6
	case "s", "sec", "second", "seconds":
		ns = 1e9
	case "m", "min", "mins", "minute", "minutes":
		ns = 60e9
	case "h", "hr", "hour", "hours":
		ns = 3600e9
	case "d", "day", "days":
		ns = 24 * 3600e9
	case "w", "wk", "week", "weeks":
		ns = 7 * 24 * 3600e9
	// No bare "m" for months: that is minutes, as in Atlas.
	case "month", "months":
		ns = 30 * 24 * 3600e9
	case "y", "year", "years":
		ns = 365 * 24 * 3600e9
	default:
		return 0, fmt.Errorf("invalid duration %q: unknown unit %q", in, unit)
	}
	ms := float64(n) * ns / 1e6
	if ms > maxDurationMs {
		return 0, fmt.Errorf("invalid duration %q: longer than 1000 years", in)
	}
	return int64(ms), nil
}

// parseISODuration handles PnDTnHnMn.nS (java.time.Duration), with weeks
// (PnW) accepted too.
func parseISODuration(in, s string) (int64, error) {
	// Every error quotes the user's text (in), not the trimmed and
	// upper-cased copy being consumed.
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("invalid duration %q: %s", in, why)
	}
	sign := 1.0
	if s[0] == '-' || s[0] == '+' {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	// Java accepts lower case designators too; upper-casing once keeps
	// the field switch below to one spelling.
	s = strings.ToUpper(s[1:])
	if s == "" || s == "T" {
		return bad("no fields")
	}
	var total float64
	inTime := false
	// seen lists the fields read, "D|TH|": a field may appear once, and
	// M means months before T and minutes after it, hence the T prefix.
	seen := ""
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return bad("two T separators")
			}
			inTime = true
			s = s[1:]
			if s == "" {
				return bad("nothing after T")
			}
			continue
		}
		i := 0
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		for i < len(s) && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == ',') {
			i++
		}
		if i == 0 || i >= len(s) || i > 24 {
			return bad("want numbers followed by D, H, M or S")
		}
		// ISO 8601 allows a comma as the decimal mark (PT1,5S).
		v, err := strconv.ParseFloat(strings.Replace(s[:i], ",", ".", 1), 64)
		if err != nil {
			return bad("bad number " + s[:i])
		}
		u := s[i]
		key := string(u)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+"|") {
			return bad("repeated field " + string(u))
		}
		seen += key + "|"
		var ms float64
		switch {
		// Months and years (P1M, P1Y) are refused, as java.time.Duration
		// refuses them: their length depends on the calendar.
		case !inTime && u == 'W':
			ms = 7 * 24 * 3600e3
		case !inTime && u == 'D':
			ms = 24 * 3600e3
		case inTime && u == 'H':
			ms = 3600e3
		case inTime && u == 'M':
			ms = 60e3
		case inTime && u == 'S':
			ms = 1e3
		default:
			return bad("unsupported field " + string(u))
		}
		total += v * ms
		s = s[i+1:]
	}
	total *= sign
	if math.IsNaN(total) || math.Abs(total) > maxDurationMs {
		return bad("out of range")
	}
	return int64(total), nil
}

// TimeRefs are the time references of ParseTime: named instants (Unix ms)
// a date may be relative to.
type TimeRefs map[string]int64

// ParseTime parses a time in the graph syntax (asl.md §3.1):
//
//   - a reference name: now, epoch, or one given in refs (s, e, gs, ge);
//   - a reference plus or minus a duration: e-3h, now-1d, s+P2DT6H5M;
//   - a Unix timestamp: seconds up to 2^31, then milliseconds, then
//     microseconds and nanoseconds as the magnitude grows;
//   - an ISO date: 2024-01-02, 2024-01-02T13:04, 2024-01-02T13:04:05.123,
//     optionally with Z or ±hh:mm; without an offset it is in zone loc.
//
// It returns Unix milliseconds.
func ParseTime(s string, loc *time.Location, now int64, refs TimeRefs) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("invalid time %q: empty", in)
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, ok := namedTime(s, now, refs); ok {
		return t, nil
	}
	// name(+|-)duration
	// Only a lower-case name may lead: 2024-01-02 also holds a '-',
	// and must go on to the ISO parser.
	if i := strings.IndexAny(s, "+-"); i > 0 && isLower(s[:i]) {
		base, ok := namedTime(s[:i], now, refs)
		if !ok {
			return 0, fmt.Errorf("invalid time %q: unknown reference %q", in, s[:i])
		}
		d, err := ParseDuration(s[i+1:])
		if err != nil {
			return 0, fmt.Errorf("invalid time %q: %w", in, err)
		}
		if s[i] == '-' {
			d = -d
		}
		return base + d, nil
	}
	if isDigits(s) {
		if len(s) > 19 {
			return 0, fmt.Errorf("invalid time %q: number too large", in)
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid time %q: %w", in, err)
		}
		// Atlas's heuristic for the unit of a bare number: small enough
		// to be seconds (up to 2038), else milliseconds, microseconds,
		// nanoseconds by magnitude. A date in 1970 in milliseconds would
		// read as seconds, which no one graphs.
		const secMax = int64(1) << 31
		switch {
		case v <= secMax:
			return v * 1000, nil
		case v <= secMax*1000:
			return v, nil
		case v <= secMax*1000_000:
			return v / 1000, nil
		}
		return v / 1000_000, nil
	}
	return parseISOTime(in, s, loc)
}

// namedTime resolves a time reference by name: the evaluation's own
// references (s, e, gs, ge) first, then now and epoch.
func namedTime(s string, now int64, refs TimeRefs) (int64, bool) {
	if t, ok := refs[s]; ok {
		return t, true
	}
	switch s {
	case "now":
		return now, true
	case "epoch":
		return 0, true
	}
	return 0, false
}

// isLower reports whether s is a non-empty run of a-z: a reference name
// such as "e" or "now", as opposed to a date or a number.
func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

// isDigits reports whether s is a non-empty run of decimal digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isoLayouts are the ISO 8601 forms Atlas accepts, most precise first; the
// forms without an offset are read in the request's time zone.
var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseISOTime reads an ISO date or date-time; in is the user's original
// text, quoted in the error so they can find what to fix.
func parseISOTime(in, s string, loc *time.Location) (int64, error) {
	// The layouts with an offset ignore loc; the others are wall
	// times in loc (the request's tz), daylight saving included.
	for _, layout := range isoLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("invalid time %q: want now, e-3h, a Unix timestamp or an ISO date such as 2024-01-02T15:04", in)
}
