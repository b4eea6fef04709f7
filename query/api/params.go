package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/query/chart"
	"github.com/sextant-dev/sextant/query/expr"
)

// paramError is a bad request parameter; it maps to 400 naming the field.
type paramError struct {
	// Param is the parameter as the user wrote it (with its axis suffix:
	// u.1), so the message points at the text to fix.
	Param string
	Msg   string
}

// Error implements error. The message leads with the parameter: the API
// shows it as is in the JSON error and on a PNG error image.
func (e *paramError) Error() string { return fmt.Sprintf("parameter %s: %s", e.Param, e.Msg) }

// badParam returns the *paramError of parameter p; the handlers' status
// mapping (statusOf) makes it a 400.
func badParam(p, format string, args ...any) error {
	return &paramError{Param: p, Msg: fmt.Sprintf(format, args...)}
}

// timeRange resolves s, e and tz (asl.md §3.1): e defaults to now and s to
// e-3h; either may be relative to the other. It returns Unix ms and the
// primary zone.
func timeRange(v url.Values, now int64, defaultTZ string) (start, end int64, loc *time.Location, err error) {
	// Atlas allows tz more than once (a chart with several time axes);
	// the first is the primary zone, which resolves the dates and
	// labels the x axis. The others are accepted and ignored.
	tzs := v["tz"]
	tz := defaultTZ
	if len(tzs) > 0 && tzs[0] != "" {
		tz = tzs[0]
	}
	if loc, err = time.LoadLocation(tz); err != nil {
		return 0, 0, nil, badParam("tz", "unknown time zone %q", tz)
	}
	s, e := v.Get("s"), v.Get("e")
	if s == "" {
		s = "e-3h"
	}
	if e == "" {
		e = "now"
	}
	refs := expr.TimeRefs{}
	// One of s and e may be relative to the other (s=e-1d, e=s+6h),
	// not both: resolve the absolute one first and give the other its
	// value as the reference.
	startRel := strings.HasPrefix(s, "e-") || strings.HasPrefix(s, "e+") || s == "e"
	endRel := strings.HasPrefix(e, "s-") || strings.HasPrefix(e, "s+") || e == "s"
	switch {
	case startRel && endRel:
		return 0, 0, nil, badParam("s", "start %q and end %q are relative to each other", s, e)
	case startRel:
		if end, err = expr.ParseTime(e, loc, now, refs); err != nil {
			return 0, 0, nil, badParam("e", "%v", err)
		}
		refs["e"] = end
		if start, err = expr.ParseTime(s, loc, now, refs); err != nil {
			return 0, 0, nil, badParam("s", "%v", err)
		}
	default:
		if start, err = expr.ParseTime(s, loc, now, refs); err != nil {
			return 0, 0, nil, badParam("s", "%v", err)
		}
		refs["s"] = start
		if end, err = expr.ParseTime(e, loc, now, refs); err != nil {
			return 0, 0, nil, badParam("e", "%v", err)
		}
	}
	// start == end is allowed: the graph aligns it to one step.
	if start > end {
		return 0, 0, nil, badParam("s", "start %s is after end %s", time.UnixMilli(start).UTC().Format(time.RFC3339), time.UnixMilli(end).UTC().Format(time.RFC3339))
	}
	return start, end, loc, nil
}

// intParam reads an integer parameter in [lo, hi], def when absent; a
// value out of range is an error rather than clamped, so a typo is not a
// silently different chart.
func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "%q is not an integer between %d and %d", s, lo, hi)
	}
	return n, nil
}

// boolParam reads a flag as Atlas's webapi does: 1 or true (and yes or
// on) is set, anything else (absent included) is not.
func boolParam(v url.Values, name string) bool {
	switch strings.ToLower(v.Get(name)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// axisParam reads a per-axis parameter: name.N, or name for axis 0.
func axisParam(v url.Values, name string, axis int) string {
	if s := v.Get(name + "." + strconv.Itoa(axis)); s != "" {
		return s
	}
	if axis == 0 {
		return v.Get(name)
	}
	return ""
}

// axisParams are the graph parameters that take an axis suffix (.0, .1 ...).
var axisParams = map[string]bool{"u": true, "l": true, "scale": true, "ylabel": true, "palette": true, "o": true, "stack": true}

// axes reads the per-axis settings (u, l, scale, o, stack, ylabel,
// palette; asl.md §3.2) into one chart.Axis per axis a presentation may
// name with :axis. A bound is a number or auto (Atlas's auto-style, the
// chart's own choice); anything else is the user's error naming the
// parameter with its axis.
func axes(v url.Values) ([]chart.Axis, error) {
	// Per-axis parameters name an axis that exists: stack.99 or ylabel.5
	// is a mistake, not something to ignore.
	for name := range v {
		base, idx, ok := strings.Cut(name, ".")
		if !ok || !axisParams[base] {
			continue
		}
		if i, err := strconv.Atoi(idx); err != nil || i < 0 || i >= expr.MaxAxes {
			return nil, badParam(name, "no axis %q: axes are numbered 0 to %d", idx, expr.MaxAxes-1)
		}
	}
	out := make([]chart.Axis, expr.MaxAxes)
	for i := range out {
		a := chart.Axis{
			Upper: axisParam(v, "u", i), Lower: axisParam(v, "l", i),
			Scale: axisParam(v, "scale", i), Label: axisParam(v, "ylabel", i),
			Palette: axisParam(v, "palette", i),
		}
		if a.Palette == "" {
			// A palette with no axis suffix is every axis's default.
			a.Palette = v.Get("palette")
		}
		// o=1 is Atlas's older spelling of scale=log.
		if o := axisParam(v, "o", i); o == "1" || o == "true" {
			a.Scale = "log"
		}
		if s := axisParam(v, "stack", i); s == "1" || s == "true" {
			a.Stack = true
		}
		for _, b := range []struct{ p, val string }{{"u", a.Upper}, {"l", a.Lower}} {
			if b.val == "" || strings.HasPrefix(b.val, "auto") {
				continue
			}
			if _, err := strconv.ParseFloat(b.val, 64); err != nil {
				return nil, badParam(b.p+"."+strconv.Itoa(i), "%q is not a number", b.val)
			}
		}
		if strings.HasPrefix(a.Upper, "auto") {
			a.Upper = ""
		}
		if strings.HasPrefix(a.Lower, "auto") {
			a.Lower = ""
		}
		out[i] = a
	}
	return out, nil
}
