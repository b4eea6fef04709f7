package chart

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"time"
)

// layout is the computed geometry of a chart.
type layout struct {
	// Pixels. The plot area is what is left of w×h after the title,
	// the legend below, the time axis and the value axes on each side.
	w, h                    int
	plotX, plotY            float64 // top left of the plot area
	plotW, plotH            float64
	titleH, timeH, legendH  float64
	leftW                   float64
	rightW                  []float64 // per right-hand axis, in axis order
	legend, stats, showAxes bool
	statsInline             bool    // stats on the label's row
	statsX                  float64 // their offset from the legend's left
	// legendShown of legendTotal entries fit; the rest are counted in
	// a "… N more" row rather than pushing the plot off the image.
	legendShown, legendTotal int
}

// Render lays out and draws a chart.
func Render(c *Chart) (*Scene, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	loc := c.Loc
	if loc == nil {
		loc = time.UTC
	}
	// The order of the passes is the stacking order of the image:
	// background and grid, heatmaps and spans, fills, then lines on
	// top of every fill, then the axes and the legend.
	th := themes[c.theme()]
	lines, err := c.colors()
	if err != nil {
		return nil, err
	}
	stacked := stackLines(c, lines)
	scales := c.scales(lines, stacked)
	lay := c.computeLayout(lines, scales)
	s := &Scene{W: lay.w, H: lay.h, Background: th.bg}
	for _, sc := range scales {
		if sc == nil {
			continue
		}
		sc.top, sc.bottom = lay.plotY, lay.plotY+lay.plotH
		// About one value tick per 40 pixels of height, at least two.
		n := max(2, int(lay.plotH/40))
		if sc.f(1) != 1 && scaleIsLog(sc) {
			sc.ticks = logTicks(sc.lo, sc.hi)
		} else {
			sc.ticks = valueTicks(sc.lo, sc.hi, n)
		}
	}
	// A point at T stands for (T-step, T]: the x axis runs from the
	// start of the first step to the end of the last one drawn.
	tStart, tEnd := c.Start-c.Step, c.End-c.Step
	xOf := func(t int64) float64 {
		return lay.plotX + float64(t-tStart)/float64(tEnd-tStart)*lay.plotW
	}
	xi := func(i int) float64 { return xOf(c.Start + int64(i)*c.Step) }

	s.add(Rect{X: lay.plotX, Y: lay.plotY, W: lay.plotW, H: lay.plotH, Fill: th.plotBG})
	tticks := timeTicks(tStart, tEnd, lay.plotW, 90, loc)
	if lay.showAxes {
		c.drawGrid(s, lay, th, scales, tticks, xOf)
	}
	c.drawHeatmaps(s, lay, lines, scales, xi)
	for _, l := range lines {
		if l.Style == "vspan" {
			drawVSpans(s, lay, l, xi)
		}
	}
	for i, l := range lines {
		sc := scales[l.Axis]
		switch l.Style {
		case "area":
			zero := make([]float64, len(l.Values))
			drawFill(s, sc, l.Values, zero, l.Color, xi)
		case "stack":
			drawFill(s, sc, stacked[i].top, stacked[i].base, l.Color, xi)
		}
	}
	for i, l := range lines {
		sc := scales[l.Axis]
		switch l.Style {
		case "line", "":
			drawLine(s, sc, l.Values, l.Color, l.Width, xi)
		case "stack":
			drawLine(s, sc, stacked[i].top, l.Color, l.Width, xi)
		}
	}
	if lay.showAxes {
		c.drawAxes(s, lay, th, scales, tticks, xOf)
	}
	if c.Title != "" && !c.OnlyGraph {
		s.add(Text{X: float64(lay.w) / 2, Y: padding + ascent, S: clip(c.Title, float64(lay.w)-8), Anchor: Middle, Color: th.fg})
	}
	if lay.legend {
		c.drawLegend(s, lay, th, lines)
	}
	return s, nil
}

// scaleIsLog reports whether an axis is logarithmic, so that its ticks are
// placed at powers of ten rather than at even steps.
func scaleIsLog(sc *scale) bool { return math.Abs(sc.f(100)-2) < 1e-9 }

// colors resolves every line's color from its axis palette.
func (c *Chart) colors() ([]Line, error) {
	lines := make([]Line, len(c.Lines))
	next := map[int]int{}
	pals := map[int][]color.NRGBA{}
	for i, l := range c.Lines {
		if l.Axis < 0 || l.Axis >= 5 {
			return nil, fmt.Errorf("line %d: axis %d out of range 0..4", i, l.Axis)
		}
		if l.Width <= 0 {
			l.Width = 1
		}
		if l.Style == "" {
			l.Style = "line"
		}
		// stack=1 on an axis stacks its plain lines and areas; a heatmap
		// or vspan keeps its own style.
		if c.axis(l.Axis).Stack && (l.Style == "line" || l.Style == "area") {
			l.Style = "stack"
		}
		// No color of its own: the next color of the axis palette, so
		// the lines of an axis take the palette in turn.
		if l.Color == (color.NRGBA{}) {
			p, ok := pals[l.Axis]
			if !ok {
				var err error
				if p, err = palette(c.axis(l.Axis).Palette); err != nil {
					return nil, err
				}
				pals[l.Axis] = p
			}
			l.Color = p[next[l.Axis]%len(p)]
			next[l.Axis]++
		}
		if l.Alpha != 0 {
			l.Color.A = l.Alpha
		}
		lines[i] = l
	}
	return lines, nil
}

// stackedLine is where a stacked line is drawn: from base (the lines
// stacked below it) to top (base plus its own value), per step.
type stackedLine struct{ base, top []float64 }

// stackLines computes the base and top of stacked lines, per axis in line
// order: positive values stack upwards, negative ones downwards, NaN as 0.
func stackLines(c *Chart, lines []Line) []stackedLine {
	out := make([]stackedLine, len(lines))
	pos := map[int][]float64{}
	neg := map[int][]float64{}
	for i, l := range lines {
		if l.Style != "stack" {
			continue
		}
		n := len(l.Values)
		if pos[l.Axis] == nil {
			pos[l.Axis], neg[l.Axis] = make([]float64, n), make([]float64, n)
		}
		p, q := pos[l.Axis], neg[l.Axis]
		base, top := make([]float64, n), make([]float64, n)
		for j, v := range l.Values {
			if j >= len(p) {
				break
			}
			switch {
			// A gap neither stacks nor breaks the stack: the lines above
			// continue from the same base, and the line itself is not drawn.
			case v != v:
				base[j], top[j] = p[j], math.NaN()
			case v >= 0:
				base[j], top[j] = p[j], p[j]+v
				p[j] += v
			default:
				base[j], top[j] = q[j], q[j]+v
				q[j] += v
			}
		}
		out[i] = stackedLine{base, top}
	}
	return out
}

// scales computes each used axis' value range.
func (c *Chart) scales(lines []Line, stacked []stackedLine) []*scale {
	scales := make([]*scale, 5)
	lo, hi := [5]float64{}, [5]float64{}
	for i := range lo {
		lo[i], hi[i] = math.Inf(1), math.Inf(-1)
	}
	// Infinities (a division by 0 with :fdiv) would make the range
	// infinite and every line flat: they are left out of the range.
	see := func(a int, v float64) {
		if v == v && !math.IsInf(v, 0) {
			lo[a], hi[a] = math.Min(lo[a], v), math.Max(hi[a], v)
		}
	}
	for i, l := range lines {
		if scales[l.Axis] == nil {
			ax := c.axis(l.Axis)
			scales[l.Axis] = &scale{f: scaleFunc(ax.Scale), label: ax.Label}
		}
		sc := scales[l.Axis]
		sc.used = true
		switch l.Style {
		// Spans fill the plot's height whatever their value: they do not
		// widen the range.
		case "vspan":
			continue
		// Areas and stacks are filled from 0, so 0 is in the range.
		case "area":
			see(l.Axis, 0)
		case "stack":
			see(l.Axis, 0)
			for _, v := range stacked[i].top {
				see(l.Axis, v)
			}
			continue
		case "heatmap":
			sc.heatmapLines++
		}
		for _, v := range l.Values {
			see(l.Axis, v)
		}
	}
	for a, sc := range scales {
		if sc == nil {
			continue
		}
		ax := c.axis(a)
		l, h := lo[a], hi[a]
		// No finite value on the axis: a unit range, so the empty
		// chart still has an axis.
		if math.IsInf(l, 1) {
			l, h = 0, 1
		}
		if v, err := strconv.ParseFloat(ax.Lower, 64); err == nil {
			l = v
		}
		if v, err := strconv.ParseFloat(ax.Upper, 64); err == nil {
			h = v
		}
		// A log axis cannot show 0 or less: the lower bound becomes a
		// decade below the top (at most 1).
		if scaleIsLog(sc) {
			if l <= 0 {
				l = math.Min(1, h/10)
			}
			// A flat line would be a zero-height range: widen it by half
			// its value each way so it is drawn mid-plot.
			if h <= l {
				h = l * 10
			}
		}
		if h <= l {
			switch {
			case l == 0:
				h = 1
			default:
				l, h = l-math.Abs(l)/2, h+math.Abs(h)/2
			}
		}
		sc.lo, sc.hi = l, h
	}
	return scales
}
