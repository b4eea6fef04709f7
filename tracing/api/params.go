package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/tracing"
)

// Search parameter limits.
const (
	DefaultLimit    = 100  // traces per search, as Jaeger
	MaxLimit        = 1500 // traces per search
	maxFilters      = 32   // tags per search
	maxRegexLength  = 1024
	defaultLookback = 48 * time.Hour // when start is missing, as Jaeger's query service
)

// paramError is a bad request parameter; it answers 400.
type paramError struct {
	param, msg string
}

func (e *paramError) Error() string { return fmt.Sprintf("parameter %q: %s", e.param, e.msg) }

func badParam(param, format string, args ...any) error {
	return &paramError{param: param, msg: fmt.Sprintf(format, args...)}
}

// searchParams is a parsed trace search.
type searchParams struct {
	query    tracing.Query
	traceIDs []tracing.TraceID // traceID=...: fetch these instead of searching
}

// parseSearch parses the Jaeger search parameters, plus Sextant's own:
// tagsRegex (a JSON map of key → RE2 regex over the whole value),
// tagsPrefix (key → prefix), minTraceDuration/maxTraceDuration, spanKind.
// now is Unix ns.
func parseSearch(v url.Values, now int64) (*searchParams, error) {
	p := &searchParams{}
	for _, s := range v["traceID"] {
		id, err := tracing.ParseTraceID(s)
		if err != nil {
			return nil, badParam("traceID", "%q: %v", s, err)
		}
		p.traceIDs = append(p.traceIDs, id)
	}
	if len(p.traceIDs) > MaxLimit {
		return nil, badParam("traceID", "%d ids, at most %d", len(p.traceIDs), MaxLimit)
	}
	q := &p.query
	q.Service = v.Get("service")
	if q.Service == "" && len(p.traceIDs) == 0 {
		return nil, badParam("service", "required")
	}
	q.Operation = v.Get("operation")
	var ok bool
	if q.Kind, ok = tracing.ParseSpanKind(v.Get("spanKind")); !ok {
		return nil, badParam("spanKind", "%q: use server, client, producer, consumer or internal", v.Get("spanKind"))
	}
	var err error
	if err := tagFilters(v, q); err != nil {
		return nil, err
	}
	durs := []struct {
		param string
		dst   *time.Duration
	}{
		{"minDuration", &q.MinDuration}, {"maxDuration", &q.MaxDuration},
		{"minTraceDuration", &q.MinTraceDuration}, {"maxTraceDuration", &q.MaxTraceDuration},
	}
	for _, d := range durs {
		if *d.dst, err = durationParam(v, d.param); err != nil {
			return nil, err
		}
	}
	if q.MaxDuration > 0 && q.MinDuration > q.MaxDuration {
		return nil, badParam("maxDuration", "%v is less than minDuration %v", q.MaxDuration, q.MinDuration)
	}
	if q.MaxTraceDuration > 0 && q.MinTraceDuration > q.MaxTraceDuration {
		return nil, badParam("maxTraceDuration", "%v is less than minTraceDuration %v", q.MaxTraceDuration, q.MinTraceDuration)
	}
	end, err := microsParam(v, "end", now/1000)
	if err != nil {
		return nil, err
	}
	lookback, err := lookbackParam(v)
	if err != nil {
		return nil, err
	}
	start, err := microsParam(v, "start", end-lookback.Microseconds())
	if err != nil {
		return nil, err
	}
	if start > end {
		return nil, badParam("start", "%d is after end %d", start, end)
	}
	// Jaeger's end is inclusive; ours is exclusive.
	q.Start, q.End = start*1000, end*1000+1000
	q.Limit = DefaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, badParam("limit", "%q is not a non-negative integer", s)
		}
		if n > MaxLimit {
			return nil, badParam("limit", "%d is more than %d", n, MaxLimit)
		}
		if n > 0 { // Jaeger treats 0 as the default
			q.Limit = n
		}
	}
	return p, nil
}

// tagFilters reads tags (a JSON map, as Jaeger and Grafana send it),
// repeated tag=key:value (Jaeger's older form), tagsPrefix and tagsRegex.
func tagFilters(v url.Values, q *tracing.Query) error {
	add := func(param string, m map[string]string, match tracing.AttrMatch) error {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys) // a stable order for tests and logs
		for _, k := range keys {
			if k == "" {
				return badParam(param, "an empty tag key")
			}
			f := tracing.AttrFilter{Key: k, Match: match, Value: m[k]}
			if match == tracing.MatchRegex {
				if len(f.Value) > maxRegexLength {
					return badParam(param, "the regex for %q is %d bytes long, at most %d", k, len(f.Value), maxRegexLength)
				}
				re, err := regexp.Compile("^(?:" + f.Value + ")$")
				if err != nil {
					return badParam(param, "tag %q: %v", k, err)
				}
				f.Regex = re
			}
			q.Attributes = append(q.Attributes, f)
		}
		return nil
	}
	for _, p := range []struct {
		param string
		match tracing.AttrMatch
	}{{"tags", tracing.MatchExact}, {"tagsPrefix", tracing.MatchPrefix}, {"tagsRegex", tracing.MatchRegex}} {
		s := v.Get(p.param)
		if s == "" {
			continue
		}
		m, err := jsonMap(s)
		if err != nil {
			return badParam(p.param, "%v", err)
		}
		if err := add(p.param, m, p.match); err != nil {
			return err
		}
	}
	for _, t := range v["tag"] {
		k, val, ok := strings.Cut(t, ":")
		if !ok {
			return badParam("tag", "%q: want key:value", t)
		}
		if err := add("tag", map[string]string{k: val}, tracing.MatchExact); err != nil {
			return err
		}
	}
	if len(q.Attributes) > maxFilters {
		return badParam("tags", "%d tag filters, at most %d", len(q.Attributes), maxFilters)
	}
	return nil
}

// jsonMap decodes a JSON object whose values are strings (or numbers and
// booleans, taken as their text).
func jsonMap(s string) (map[string]string, error) {
	var raw map[string]any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of tag values: %v", err)
	}
	m := make(map[string]string, len(raw))
	for k, x := range raw {
		switch x := x.(type) {
		case string:
			m[k] = x
		case bool:
			m[k] = strconv.FormatBool(x)
		case float64:
			m[k] = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			return nil, fmt.Errorf("tag %q: value is not a string, number or boolean", k)
		}
	}
	return m, nil
}

// durationParam parses a Go duration ("1.2s", "500ms"); a bare number is
// microseconds, as in Jaeger's span durations.
func durationParam(v url.Values, param string) (time.Duration, error) {
	s := v.Get(param)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(time.Duration(1<<62)/time.Microsecond) {
			return 0, badParam(param, "%q is out of range", s)
		}
		return time.Duration(n) * time.Microsecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badParam(param, "%q is not a duration such as 1.2s or 100ms", s)
	}
	return d, nil
}

// microsParam parses Unix microseconds.
func microsParam(v url.Values, param string, def int64) (int64, error) {
	s := v.Get(param)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1<<53 {
		return 0, badParam(param, "%q is not a time in microseconds since the epoch", s)
	}
	return n, nil
}

// lookbackParam parses Jaeger UI's lookback: a duration (1h, 2d) or
// "custom" (start and end are given).
func lookbackParam(v url.Values) (time.Duration, error) {
	s := v.Get("lookback")
	if s == "" || s == "custom" {
		return defaultLookback, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return 0, badParam("lookback", "%q: use a duration such as 1h or 2d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, badParam("lookback", "%q: use a duration such as 1h or 2d", s)
	}
	return d, nil
}
