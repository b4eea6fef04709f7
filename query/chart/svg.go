package chart

import (
	"bufio"
	"image/color"
	"io"
	"strconv"
	"strings"
)

// WriteSVG writes a scene as an SVG document.
func WriteSVG(w io.Writer, s *Scene) error {
	b := bufio.NewWriter(w)
	ws := func(ss ...string) {
		for _, x := range ss {
			b.WriteString(x)
		}
	}
	W, H := strconv.Itoa(s.W), strconv.Itoa(s.H)
	ws(`<svg xmlns="http://www.w3.org/2000/svg" width="`, W, `" height="`, H, `" viewBox="0 0 `, W, ` `, H,
		`" font-family="DejaVu Sans Mono,Menlo,Consolas,monospace" font-size="11.7">`, "\n")
	ws(`<rect width="`, W, `" height="`, H, `"`, fill(s.Background), "/>\n")
	for _, op := range s.Ops {
		switch o := op.(type) {
		case Rect:
			ws(`<rect x="`, num(o.X), `" y="`, num(o.Y), `" width="`, num(o.W), `" height="`, num(o.H), `"`, fill(o.Fill), "/>\n")
		case Polyline:
			ws(`<polyline points="`, points(o.Points), `" fill="none" stroke="`, hex(o.Stroke), `"`)
			if o.Stroke.A != 0xff {
				ws(` stroke-opacity="`, opacity(o.Stroke.A), `"`)
			}
			if o.Width != 1 {
				ws(` stroke-width="`, num(o.Width), `"`)
			}
			ws(` stroke-linejoin="round"/>`, "\n")
		case Polygon:
			ws(`<polygon points="`, points(o.Points), `"`, fill(o.Fill), "/>\n")
		case Text:
			ws(`<text x="`, num(o.X), `" y="`, num(o.Y), `"`)
			switch o.Anchor {
			case Middle:
				ws(` text-anchor="middle"`)
			case End:
				ws(` text-anchor="end"`)
			}
			if o.Rotate {
				ws(` transform="rotate(-90 `, num(o.X), ` `, num(o.Y), `)"`)
			}
			ws(fill(o.Color), `>`, escapeXML(o.S), "</text>\n")
		}
	}
	ws("</svg>\n")
	return b.Flush()
}

// fill is the SVG fill attribute of a colour. SVG colours have no alpha
// channel, so a translucent colour (an area under a line, a heatmap cell)
// becomes an opaque colour plus a fill-opacity attribute.
func fill(c color.NRGBA) string {
	s := ` fill="` + hex(c) + `"`
	if c.A != 0xff {
		s += ` fill-opacity="` + opacity(c.A) + `"`
	}
	return s
}

// hex spells the RGB part of a colour as #rrggbb, the one form every SVG
// renderer accepts.
func hex(c color.NRGBA) string {
	const digits = "0123456789abcdef"
	b := []byte{'#', 0, 0, 0, 0, 0, 0}
	for i, v := range []uint8{c.R, c.G, c.B} {
		b[1+2*i] = digits[v>>4]
		b[2+2*i] = digits[v&15]
	}
	return string(b)
}

// opacity turns an 8-bit alpha into SVG's 0..1 opacity with three
// decimals, enough to tell the 256 levels apart.
func opacity(a uint8) string { return strconv.FormatFloat(float64(a)/255, 'f', 3, 64) }

// num formats a coordinate with one decimal, trimming ".0".
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		return "0"
	}
	return s
}

// points is a polyline's points attribute: "x,y x,y ...". Coordinates go
// through num so that a long line's attribute stays short.
func points(ps []Point) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(num(p.X))
		b.WriteByte(',')
		b.WriteString(num(p.Y))
	}
	return b.String()
}

// escapeXML makes text safe inside an SVG element or attribute. Legend
// labels and titles come from the query and from tag values, which are
// user input: an unescaped "<" would let a tag value inject markup into an
// image that a browser renders.
func escapeXML(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			if r < 0x20 {
				continue // not allowed in XML 1.0
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
