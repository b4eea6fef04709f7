package chart

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Tick is an axis mark at a value with its label.
type Tick struct {
	V     float64
	Label string
	Major bool
}

// valueTicks picks about n nice ticks (1, 2 or 5 times a power of ten)
// within [lo, hi], labelled with SI prefixes.
func valueTicks(lo, hi float64, n int) []Tick {
	if !(hi > lo) || n < 1 {
		return nil
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	first := math.Ceil(lo/step) * step
	// Label precision follows the step so neighbouring labels differ.
	var ticks []Tick
	for i := 0; ; i++ {
		v := first + float64(i)*step
		if v > hi+step*1e-9 || i > 1000 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, Tick{V: v, Major: true})
	}
	prefix := siPrefix(math.Max(math.Abs(lo), math.Abs(hi)))
	for i := range ticks {
		if ticks[i].V == 0 {
			ticks[i].Label = "0"
			continue
		}
		ticks[i].Label = formatWithPrefix(ticks[i].V, prefix, step)
	}
	return ticks
}

// logTicks puts ticks at powers of ten within [lo, hi] (both > 0).
func logTicks(lo, hi float64) []Tick {
	var ticks []Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)) && len(ticks) < 40; e++ {
		v := math.Pow(10, e)
		if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
			ticks = append(ticks, Tick{V: v, Label: FormatValue(v), Major: true})
		}
	}
	return ticks
}

// prefix is an SI prefix: the power of ten it stands for and its symbol.
type prefix struct {
	factor float64
	symbol string
}

// prefixes are tried from the largest down; the first whose factor the
// value reaches is used, so 1500 is "1.5k" and 0.002 is "2m".
var prefixes = []prefix{
	{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"},
	{1, ""}, {1e-3, "m"}, {1e-6, "\u00b5"}, {1e-9, "n"},
}

// siPrefix picks the prefix for a magnitude. One prefix labels a whole
// axis (chosen from its largest bound) so that the labels read as one
// series of numbers rather than mixing "900" and "1.1k".
func siPrefix(v float64) prefix {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return prefix{1, ""}
	}
	for _, p := range prefixes {
		if v >= p.factor {
			return p
		}
	}
	return prefixes[len(prefixes)-1]
}

// formatWithPrefix labels an axis tick: as many decimals as the step
// between ticks needs for neighbouring labels to differ, at most six.
func formatWithPrefix(v float64, p prefix, step float64) string {
	scaled := v / p.factor
	digits := 0
	if s := step / p.factor; s < 1 {
		digits = int(math.Ceil(-math.Log10(s) - 1e-9))
	}
	return trimZeros(strconv.FormatFloat(scaled, 'f', min(digits, 6), 64)) + p.symbol
}

// trimZeros drops trailing zeros after a decimal point, and the point when
// nothing follows it, so that "2.50" reads "2.5" and "3.0" reads "3".
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}

// FormatValue renders a value compactly with three significant digits and
// an SI prefix: 1.23k, 45.6M, 0.5, NaN.
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == 0:
		return "0"
	}
	p := siPrefix(math.Abs(v))
	s := v / p.factor
	digits := max(0, 2-int(math.Floor(math.Log10(math.Abs(s)))))
	return trimZeros(strconv.FormatFloat(s, 'f', digits, 64)) + p.symbol
}

// timeSteps are the candidate intervals between time ticks, in ms.
var timeSteps = []int64{
	1000, 2000, 5000, 10000, 15000, 30000,
	60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 20 * 60e3, 30 * 60e3,
	3600e3, 2 * 3600e3, 3 * 3600e3, 4 * 3600e3, 6 * 3600e3, 8 * 3600e3, 12 * 3600e3,
	86400e3, 2 * 86400e3, 7 * 86400e3, 14 * 86400e3, 30 * 86400e3, 90 * 86400e3, 365 * 86400e3,
}

// timeTicks picks ticks at round times in loc, at most one per minPx
// pixels of a width w.
func timeTicks(start, end int64, w float64, minPx float64, loc *time.Location) []Tick {
	if end <= start || w <= 0 {
		return nil
	}
	maxTicks := max(1, int(w/minPx))
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if (end-start)/s <= int64(maxTicks) {
			step = s
			break
		}
	}
	_, off := time.UnixMilli(start).In(loc).Zone()
	offMs := int64(off) * 1000
	// Round in local time so ticks fall on local midnights and hours.
	first := start + offMs
	if r := ((first % step) + step) % step; r != 0 {
		first += step - r
	}
	first -= offMs
	var ticks []Tick
	for t := first; t <= end && len(ticks) < 1000; t += step {
		ticks = append(ticks, Tick{V: float64(t), Label: timeLabel(t, step, loc), Major: true})
	}
	return ticks
}

// timeLabel formats a time tick with the precision its step needs:
// seconds under a minute, hours and minutes under a day (a midnight
// shows its date instead), dates under a year, else the year.
func timeLabel(t, step int64, loc *time.Location) string {
	tm := time.UnixMilli(t).In(loc)
	switch {
	case step < 60e3:
		return tm.Format("15:04:05")
	case step < 86400e3:
		if tm.Hour() == 0 && tm.Minute() == 0 {
			return tm.Format("Jan 02")
		}
		return tm.Format("15:04")
	case step < 365*86400e3:
		return tm.Format("Jan 02")
	}
	return tm.Format("2006")
}
