package chart

import (
	"image/color"
	"math"
)

// drawLine strokes a line, broken where values are NaN; a lone value is a
// short horizontal stroke over its step.
func drawLine(s *Scene, sc *scale, vs []float64, col color.NRGBA, width float64, xi func(int) float64) {
	// run is the current unbroken stretch of points; flush draws it.
	// A gap (NaN) is drawn as a gap, never bridged: joining the points
	// around it would show data where there is none.
	var run []Point
	flush := func() {
		switch len(run) {
		case 0:
			return
		case 1:
			p := run[0]
			// A single point would be invisible as a polyline: draw it
			// across its step, (T-step, T], which is what the point
			// stands for.
			run = append([]Point{{p.X - (xi(1) - xi(0)), p.Y}}, p)
		}
		s.add(Polyline{Points: run, Stroke: col, Width: width})
		run = nil
	}
	for i, v := range vs {
		if v != v || math.IsInf(v, 0) {
			flush()
			continue
		}
		run = append(run, Point{xi(i), sc.y(v)})
	}
	flush()
}

// drawFill fills between base and top for each run of values.
func drawFill(s *Scene, sc *scale, top, base []float64, col color.NRGBA, xi func(int) float64) {
	// start is the first index of the current run of drawable values
	// (-1 outside a run); each run is one closed polygon, top edge left
	// to right, base edge back.
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		var pts []Point
		first, last := start, end
		x0 := xi(first)
		if first == last {
			x0 = xi(first) - (xi(1) - xi(0))
		}
		pts = append(pts, Point{x0, sc.y(top[first])})
		for i := first; i <= last; i++ {
			pts = append(pts, Point{xi(i), sc.y(top[i])})
		}
		for i := last; i >= first; i-- {
			pts = append(pts, Point{xi(i), sc.y(base[i])})
		}
		pts = append(pts, Point{x0, sc.y(base[first])})
		s.add(Polygon{Points: pts, Fill: col})
		start = -1
	}
	for i, v := range top {
		if v != v || math.IsInf(v, 0) {
			flush(i - 1)
			continue
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(top) - 1)
}

// drawVSpans shades the full plot height where a line is true.
func drawVSpans(s *Scene, lay layout, l Line, xi func(int) float64) {
	// A true point covers its whole step (T-step, T], so a span of
	// consecutive true points is one rectangle from the start of the
	// first step to the end of the last.
	step := xi(1) - xi(0)
	start := -1
	for i := 0; i <= len(l.Values); i++ {
		// Atlas's truth (expr.ToBool): not NaN, not (nearly) 0. The loop
		// runs one past the end so a span open at the last point closes.
		on := i < len(l.Values) && !(l.Values[i] != l.Values[i] || math.Abs(l.Values[i]) < 1e-12)
		switch {
		case on && start < 0:
			start = i
		case !on && start >= 0:
			x0 := xi(start) - step
			x1 := xi(i - 1)
			s.add(Rect{X: x0, Y: lay.plotY, W: x1 - x0, H: lay.plotH, Fill: l.Color})
			start = -1
		}
	}
}

// drawHeatmaps draws, per axis, the heatmap lines as a grid of cells whose
// color deepens with the number of lines falling in them.
func (c *Chart) drawHeatmaps(s *Scene, lay layout, lines []Line, scales []*scale, xi func(int) float64) {
	for a, sc := range scales {
		if sc == nil || sc.heatmapLines == 0 {
			continue
		}
		// Cells about 6 pixels high; columns are the steps.
		rows := max(1, int(lay.plotH/6))
		n := 0
		var base color.NRGBA
		for _, l := range lines {
			if l.Axis == a && l.Style == "heatmap" {
				n = max(n, len(l.Values))
				if base == (color.NRGBA{}) {
					base = l.Color
				}
			}
		}
		counts := make([]int, n*rows)
		most := 0
		// Rows are placed in the axis' scale space (log, sqrt...), so a
		// log heatmap spreads decades evenly, as its axis does.
		fa, fb := sc.f(sc.lo), sc.f(sc.hi)
		for _, l := range lines {
			if l.Axis != a || l.Style != "heatmap" {
				continue
			}
			for i, v := range l.Values {
				if v != v || math.IsInf(v, 0) || fb == fa {
					continue
				}
				r := int((sc.f(v) - fa) / (fb - fa) * float64(rows))
				// Values outside the axis range (an explicit u or l) are not
				// drawn; the top edge itself falls in the last row.
				if r < 0 || r > rows {
					continue
				}
				r = min(r, rows-1)
				counts[i*rows+r]++
				most = max(most, counts[i*rows+r])
			}
		}
		if most == 0 {
			continue
		}
		step := xi(1) - xi(0)
		cellH := lay.plotH / float64(rows)
		for i := 0; i < n; i++ {
			for r := 0; r < rows; r++ {
				k := counts[i*rows+r]
				if k == 0 {
					continue
				}
				col := base
				// Opacity grows with the log of the count, from a visible 40
				// to opaque at the busiest cell: a few lines in a cell still
				// show beside one where hundreds fall.
				col.A = uint8(40 + 215*math.Log1p(float64(k))/math.Log1p(float64(most)))
				y := lay.plotY + lay.plotH - float64(r+1)*cellH
				s.add(Rect{X: xi(i) - step, Y: y, W: step, H: cellH, Fill: col})
			}
		}
	}
}
