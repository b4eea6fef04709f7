package chart

import (
	"math"
	"strconv"
	"strings"
)

// Layout arithmetic is in pixels as float64, rounded only when the scene is
// rasterized, so that SVG output keeps sub-pixel positions and PNG output
// snaps lines to pixel centres (the +0.5 offsets below).
const (
	// legendRowH is one legend row: a text line and a little air, so the
	// colour swatches of consecutive rows do not touch.
	legendRowH = lineH + 3
	// minPlotH is the smallest plot height worth drawing; below it the
	// legend gives way to the plot rather than the other way round.
	minPlotH = 40
)

// computeLayout sizes the title, axes, legend and plot.
//
// Atlas's layouts decide which size the caller fixed: "image" (the default)
// fixes the whole image and the plot takes what is left; "canvas" fixes the
// plot and the image grows around it; "iw" and "ih" fix the image width or
// height and the plot size in the other direction. Whatever the layout, no
// side exceeds MaxSide: a request for a huge legend gets a "… N more" row,
// not an image of unbounded size.
func (c *Chart) computeLayout(lines []Line, scales []*scale) layout {
	lay := layout{showAxes: !c.OnlyGraph, legend: !c.NoLegend && !c.OnlyGraph && len(lines) > 0, stats: !c.NoLegendStats}
	if lay.showAxes {
		if c.Title != "" {
			lay.titleH = lineH + 2*padding
		}
		lay.timeH = lineH + 2*padding
		// Label widths from provisional ticks. The final ticks depend on the
		// plot height, which depends on the axis widths, which depend on
		// the labels: one provisional pass with the requested height breaks
		// the cycle, and is close enough because tick labels of one axis
		// have similar widths.
		for a, sc := range scales {
			if sc == nil {
				continue
			}
			n := max(2, c.Height/40)
			var ticks []Tick
			if scaleIsLog(sc) {
				ticks = logTicks(sc.lo, sc.hi)
			} else {
				ticks = valueTicks(sc.lo, sc.hi, n)
			}
			for _, t := range ticks {
				sc.labelW = math.Max(sc.labelW, textWidth(t.Label))
			}
			w := sc.labelW + 2*padding + 2
			if sc.label != "" {
				w += lineH + padding
			}
			if a == 0 {
				lay.leftW = w
			} else {
				lay.rightW = append(lay.rightW, w)
			}
		}
		if lay.leftW == 0 {
			lay.leftW = 3 * padding
		}
	}
	// Room right of the plot: a margin plus one column per right axis.
	right := 3.0 * padding
	for _, w := range lay.rightW {
		right += w
	}
	if !lay.showAxes {
		right = 0
	}
	entries := legendEntries(lines)
	lay.legendTotal = len(entries)
	// Stats share the label's row when a column of them fits.
	labelW := 0.0
	for _, e := range entries {
		labelW = math.Max(labelW, textWidth(e.line.Label))
	}
	lay.statsX = 14 + labelW + 2*charW
	inline := lay.statsX+statsWidth < float64(c.Width)-lay.leftW-padding
	lay.statsInline = inline
	// A legend row takes two text lines when the stats wrap below the label.
	rowsPer := func(stats bool) float64 {
		if stats && !inline {
			return 2
		}
		return 1
	}
	legendH := func(n int, stats bool) float64 {
		if n == 0 {
			return 0
		}
		return float64(n)*rowsPer(stats)*legendRowH + 2*padding
	}
	W, H := float64(c.Width), float64(c.Height)
	switch c.Layout {
	case "canvas", "iw", "ih":
		// The plot has (at least one of) the requested sizes and the image
		// grows around it.
		lay.plotW, lay.plotH = W, H
		if c.Layout == "iw" {
			lay.plotW = W - lay.leftW - right
		}
		if lay.legend {
			lay.legendShown = len(entries)
			lay.legendH = legendH(len(entries), lay.stats)
		}
		if c.Layout == "ih" {
			lay.plotH = H - lay.titleH - lay.timeH - lay.legendH
			if lay.plotH < minPlotH {
				lay.legend, lay.legendH = false, 0
				lay.plotH = H - lay.titleH - lay.timeH
			}
		}
		// The image grows around the plot, but never past MaxSide on a
		// side: the plot shrinks to fit, and the legend shows what fits
		// with a "… N more" row.
		if c.Layout != "iw" {
			lay.plotW = math.Min(lay.plotW, MaxSide-lay.leftW-right)
		}
		if c.Layout != "ih" {
			fixed := lay.titleH + padding + lay.timeH
			lay.plotH = math.Min(lay.plotH, MaxSide-fixed)
			if lay.legend && fixed+lay.plotH+lay.legendH > MaxSide {
				// The legend may take up to half of what is left; the plot
				// keeps the rest.
				lay.plotH = math.Max(MaxSide-fixed-lay.legendH, math.Min(lay.plotH, (MaxSide-fixed)/2))
			}
			if lay.legend {
				room := MaxSide - fixed - lay.plotH
				n := len(entries)
				for n > 0 && legendH(n, lay.stats)+extraRow(n, len(entries)) > room {
					n--
				}
				lay.legendShown = n
				lay.legendH = legendH(n, lay.stats) + extraRow(n, len(entries))
				if n == 0 {
					lay.legend, lay.legendH = false, 0
				}
			}
		}
	default:
		lay.plotW = W - lay.leftW - right
		lay.plotH = H - lay.titleH - lay.timeH
		if !lay.showAxes {
			lay.plotW, lay.plotH = W, H
		}
		if lay.legend {
			// Fit as many legend entries as leave a usable plot; drop the
			// stats before dropping entries.
			room := lay.plotH - minPlotH
			for _, stats := range []bool{lay.stats, false} {
				n := len(entries)
				for n > 0 && legendH(n, stats)+extraRow(n, len(entries)) > room {
					n--
				}
				if n == len(entries) || !stats {
					lay.stats, lay.legendShown = stats, n
					break
				}
			}
			if lay.legendShown == 0 {
				lay.legend = false
			} else {
				lay.legendH = legendH(lay.legendShown, lay.stats) + extraRow(lay.legendShown, len(entries))
				lay.plotH -= lay.legendH
			}
		}
	}
	// A degenerate request (tiny image, huge labels) still gets a plot
	// that the scales can map onto without dividing by zero.
	lay.plotW = math.Max(lay.plotW, 10)
	lay.plotH = math.Max(lay.plotH, 10)
	lay.plotX = lay.leftW
	if !lay.showAxes {
		lay.plotX = 0
	}
	lay.plotY = lay.titleH + padding
	if !lay.showAxes {
		lay.plotY = 0
	}
	// The image size: grown around the plot for canvas layouts, then
	// pinned back to what the caller fixed for the others.
	lay.w = int(math.Ceil(lay.plotX + lay.plotW + right))
	lay.h = int(math.Ceil(lay.plotY + lay.plotH + lay.timeH + lay.legendH))
	if c.Layout == "" || c.Layout == "image" {
		lay.w, lay.h = c.Width, c.Height
	}
	if c.Layout == "iw" {
		lay.w = c.Width
	}
	if c.Layout == "ih" {
		lay.h = c.Height
	}
	if !lay.showAxes {
		lay.w, lay.h = int(lay.plotW), int(lay.plotH)
	}
	return lay
}

// MaxSide is the most pixels of a chart on each side, legend included.
const MaxSide = 4000

// extraRow is the "… N more" row when the legend is cut.
func extraRow(shown, total int) float64 {
	if shown < total {
		return legendRowH
	}
	return 0
}

// legendEntry is a legend row: a line, or all heatmap lines of an axis.
type legendEntry struct {
	line    Line
	heatmap int // number of lines for a heatmap entry
}

// legendEntries lists the legend rows in line order. Heatmap lines are
// many series that draw one picture, so each axis's heatmap gets a single
// row at the position of its first line, counting how many lines it merges.
func legendEntries(lines []Line) []legendEntry {
	var out []legendEntry
	heat := map[int]int{}
	for _, l := range lines {
		if l.Style == "heatmap" {
			if _, ok := heat[l.Axis]; !ok {
				heat[l.Axis] = len(out)
				out = append(out, legendEntry{line: l})
			}
			out[heat[l.Axis]].heatmap++
			continue
		}
		out = append(out, legendEntry{line: l})
	}
	return out
}

// drawGrid draws the vertical lines at the time ticks and the horizontal
// lines at the first axis's value ticks. Lines are drawn at pixel centres
// (+0.5) so a one-pixel line is crisp in PNG output rather than smeared
// over two rows of half intensity.
func (c *Chart) drawGrid(s *Scene, lay layout, th theme, scales []*scale, tticks []Tick, xOf func(int64) float64) {
	for _, t := range tticks {
		x := math.Round(xOf(int64(t.V))) + 0.5
		s.add(Polyline{Points: []Point{{x, lay.plotY}, {x, lay.plotY + lay.plotH}}, Stroke: th.grid, Width: 1})
	}
	for _, sc := range scales {
		if sc == nil {
			continue
		}
		for _, t := range sc.ticks {
			y := math.Round(sc.y(t.V)) + 0.5
			s.add(Polyline{Points: []Point{{lay.plotX, y}, {lay.plotX + lay.plotW, y}}, Stroke: th.grid, Width: 1})
		}
		break // one grid, from the first axis in use
	}
}

// drawAxes draws the time axis under the plot with its labels, the first
// value axis at the left and any further axes side by side at the right,
// each with its tick labels and its rotated label. A time label that would
// stick out past the left edge is anchored at its start instead of centred.
func (c *Chart) drawAxes(s *Scene, lay layout, th theme, scales []*scale, tticks []Tick, xOf func(int64) float64) {
	bottom := lay.plotY + lay.plotH
	s.add(Polyline{Points: []Point{{lay.plotX, bottom + 0.5}, {lay.plotX + lay.plotW, bottom + 0.5}}, Stroke: th.fg, Width: 1})
	for _, t := range tticks {
		x := xOf(int64(t.V))
		anchor := Middle
		if x-textWidth(t.Label)/2 < lay.plotX-lay.leftW {
			anchor = Start
		}
		s.add(Text{X: x, Y: bottom + padding + ascent, S: t.Label, Anchor: anchor, Color: th.fg})
	}
	rightX := lay.plotX + lay.plotW
	ri := 0
	for a, sc := range scales {
		if sc == nil {
			continue
		}
		if a == 0 {
			x := lay.plotX - 0.5
			s.add(Polyline{Points: []Point{{x, lay.plotY}, {x, bottom}}, Stroke: th.fg, Width: 1})
			for _, t := range sc.ticks {
				s.add(Text{X: x - padding, Y: sc.y(t.V) + ascent/2 - 1, S: t.Label, Anchor: End, Color: th.fg})
			}
			if sc.label != "" {
				s.add(Text{X: padding + ascent, Y: lay.plotY + lay.plotH/2, S: clip(sc.label, lay.plotH), Anchor: Middle, Color: th.fg, Rotate: true})
			}
			continue
		}
		x := rightX + 0.5
		s.add(Polyline{Points: []Point{{x, lay.plotY}, {x, bottom}}, Stroke: th.fg, Width: 1})
		for _, t := range sc.ticks {
			s.add(Text{X: x + padding, Y: sc.y(t.V) + ascent/2 - 1, S: t.Label, Anchor: Start, Color: th.fg})
		}
		if sc.label != "" {
			s.add(Text{X: x + sc.labelW + 2*padding + ascent, Y: lay.plotY + lay.plotH/2, S: clip(sc.label, lay.plotH), Anchor: Middle, Color: th.fg, Rotate: true})
		}
		if ri < len(lay.rightW) {
			rightX += lay.rightW[ri]
			ri++
		}
	}
}

// drawLegend draws the rows computeLayout made room for: a colour swatch,
// the label, and the stats (max, min, avg, last, the same summary Atlas
// prints) either inline in a column or on a second row. Labels are clipped
// to their column, never allowed to run into the stats or off the image.
func (c *Chart) drawLegend(s *Scene, lay layout, th theme, lines []Line) {
	entries := legendEntries(lines)
	y := lay.plotY + lay.plotH + lay.timeH + padding
	x := lay.plotX
	maxW := float64(lay.w) - x - padding
	for _, e := range entries[:lay.legendShown] {
		col := e.line.Color
		if col.A < 0x60 {
			col.A = 0x60 // keep faint colors visible in the swatch
		}
		s.add(Rect{X: x, Y: y + 2, W: 10, H: 10, Fill: col})
		label := e.line.Label
		if e.heatmap > 0 {
			label = "heatmap of " + plural(e.heatmap, "line")
		}
		labelMax := maxW - 14
		if lay.stats && lay.statsInline {
			labelMax = lay.statsX - 14 - charW
		}
		s.add(Text{X: x + 14, Y: y + ascent, S: clip(label, labelMax), Color: th.fg})
		if lay.stats {
			var st string
			if e.heatmap == 0 {
				sum := summarize(e.line.Values)
				st = "max: " + pad(FormatValue(sum.max)) + " min: " + pad(FormatValue(sum.min)) +
					" avg: " + pad(FormatValue(sum.avg())) + " last: " + FormatValue(sum.last)
			}
			sx := x + lay.statsX
			if !lay.statsInline {
				y += legendRowH
				sx = x + 14
			}
			s.add(Text{X: sx, Y: y + ascent, S: clip(st, maxW-(sx-x)), Color: th.fg})
		}
		y += legendRowH
	}
	if lay.legendShown < lay.legendTotal {
		s.add(Text{X: x, Y: y + ascent, S: "… " + strconv.Itoa(lay.legendTotal-lay.legendShown) + " more", Color: th.fg})
	}
}

// statsWidth is the width of a legend stats column.
const statsWidth = float64(len("max: 123.4k min: 123.4k avg: 123.4k last: 123.4k") * charW)

// pad widens a value to the column width of the legend stats.
func pad(s string) string {
	for len([]rune(s)) < 6 {
		s += " "
	}
	return s
}

// plural spells a count with its noun, "1 line" or "3 lines".
func plural(n int, what string) string {
	s := strconv.Itoa(n) + " " + what
	if n != 1 {
		s += "s"
	}
	return s
}

// clip shortens s to fit w pixels.
func clip(s string, w float64) string {
	if textWidth(s) <= w {
		return s
	}
	n := int(w/charW) - 3
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if n > len(r) {
		n = len(r)
	}
	return strings.TrimSpace(string(r[:n])) + "..."
}

// lineSummary is the legend's view of a line: the statistics over its
// non-NaN values. A line with no values has NaN for each, which the legend
// prints as NaN, as Atlas does.
type lineSummary struct {
	count                 int
	total, max, min, last float64
}

// avg is the mean of the line's values, NaN when it has none.
func (s lineSummary) avg() float64 {
	if s.count == 0 {
		return math.NaN()
	}
	return s.total / float64(s.count)
}

// summarize computes the legend statistics of a line in one pass.
func summarize(vs []float64) lineSummary {
	s := lineSummary{max: math.NaN(), min: math.NaN(), last: math.NaN()}
	for _, v := range vs {
		if v != v {
			continue
		}
		if s.count == 0 {
			s.max, s.min = v, v
		}
		s.max, s.min = math.Max(s.max, v), math.Min(s.min, v)
		s.total += v
		s.last = v
		s.count++
	}
	return s
}
