package api

import (
	"strconv"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/chart"
)

// appendV2JSON writes format=v2.json, Atlas's streaming-friendly layout:
// a JSON array whose first object is the graph's metadata and then one
// "timeseries" object per line carrying its drawing settings (the
// expression's :color, :alpha, :lw, :area/:stack/:vspan/:heatmap and
// :axis) beside its tags and values. The web UI draws its charts from it;
// value i is at start + i×step, non-finite values are the strings "NaN"
// and "Infinity". color is RRGGBB, or absent when the axis palette
// chooses it.
func appendV2JSON(buf []byte, g *graphRequest, res *query.Result) []byte {
	n := g.rng.N()
	buf = append(buf, `[{"type":"graph-metadata","startTime":`...)
	buf = strconv.AppendInt(buf, g.rng.Start, 10)
	// endTime is exclusive: the end of the last step shown.
	buf = append(buf, `,"endTime":`...)
	buf = strconv.AppendInt(buf, g.rng.Start+int64(n)*g.rng.Step, 10)
	buf = append(buf, `,"step":`...)
	buf = strconv.AppendInt(buf, g.rng.Step, 10)
	buf = append(buf, `,"title":`...)
	buf = appendString(buf, g.chart.Title)
	buf = append(buf, '}')
	// The same color assignment as the PNG (chartLines), so the UI's
	// chart and the server's image of one graph color lines alike.
	colors := chartLines(res.Lines)
	for i, l := range res.Lines {
		// id is the line's position, unique within the answer only; expr
		// is the index of the presentation it came from, for the UI's
		// per-expression settings.
		buf = append(buf, `,{"type":"timeseries","id":"`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `","label":`...)
		buf = appendString(buf, l.Label)
		buf = append(buf, `,"expr":`...)
		buf = strconv.AppendInt(buf, int64(l.Expr), 10)
		buf = append(buf, `,"axis":`...)
		buf = strconv.AppendInt(buf, int64(l.Axis), 10)
		style := l.LineStyle
		if style == "" {
			style = "line"
		}
		buf = append(buf, `,"lineStyle":`...)
		buf = appendString(buf, style)
		buf = append(buf, `,"lineWidth":`...)
		w := l.Width
		if w <= 0 {
			w = 1
		}
		buf = strconv.AppendFloat(buf, w, 'g', -1, 64)
		// The zero color means no color was set: the client picks one
		// from the axis palette, as the PNG renderer does.
		if c := colors[i].Color; c != (chart.Line{}).Color {
			buf = append(buf, `,"color":"`...)
			buf = appendHex(buf, c.R, c.G, c.B)
			buf = append(buf, '"')
		}
		if l.Alpha != "" {
			buf = append(buf, `,"alpha":`...)
			buf = appendString(buf, l.Alpha)
		}
		buf = append(buf, `,"tags":`...)
		buf = appendTags(buf, l.Tags)
		buf = append(buf, `,"start":`...)
		buf = strconv.AppendInt(buf, g.rng.Start, 10)
		buf = append(buf, `,"end":`...)
		buf = strconv.AppendInt(buf, g.rng.Start+int64(n)*g.rng.Step, 10)
		buf = append(buf, `,"step":`...)
		buf = strconv.AppendInt(buf, g.rng.Step, 10)
		buf = append(buf, `,"data":{"type":"array","values":[`...)
		// A line always has n values; the bound guards the encoder
		// rather than trusting it.
		for j := 0; j < n && j < len(l.Values); j++ {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = appendValue(buf, l.Values[j])
		}
		buf = append(buf, "]}}"...)
	}
	return append(buf, "]\n"...)
}

// appendHex appends each byte as two lower-case hex digits (RRGGBB).
func appendHex(buf []byte, bs ...uint8) []byte {
	const digits = "0123456789abcdef"
	for _, b := range bs {
		buf = append(buf, digits[b>>4], digits[b&15])
	}
	return buf
}
