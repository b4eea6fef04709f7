package chart

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart describes what to draw.
type Chart struct {
	Width, Height int
	// Layout: "image" (default) makes the whole image Width×Height;
	// "canvas" makes the plot area Width×Height and grows the image around
	// it; "iw" fixes the image width and the plot height; "ih" the image
	// height and the plot width.
	Layout string
	Title  string
	Loc    *time.Location // time zone of the time axis
	// The lines' points are at Start + i*Step; the time axis spans
	// [Start-Step, End-Step] so each point ends its step interval.
	Start, End, Step int64
	Lines            []Line
	Axes             []Axis // per y axis; missing entries are defaults
	NoLegend         bool
	NoLegendStats    bool
	OnlyGraph        bool
	Theme            string // "light" (default) or "dark"
	Notices          []string
}

// Line is one line of the chart.
type Line struct {
	Label  string
	Values []float64
	Color  color.NRGBA // zero: the axis palette's next color
	Alpha  uint8       // non-zero: replaces the color's alpha
	Style  string      // line, area, stack, vspan or heatmap
	Width  float64
	Axis   int
}

// Axis holds the settings of a y axis.
type Axis struct {
	Upper, Lower string // a number, or "" for automatic
	Scale        string // linear (default), log, log-linear, pow2, sqrt
	Label        string
	Stack        bool // draw every line of the axis stacked
	Palette      string
}

// theme is the palette of everything that is not a line: background,
// text, grid and plot area. Line colours come from the axis palettes.
type theme struct {
	bg, fg, grid, minorGrid, plotBG color.NRGBA
}

// themes are the two themes Atlas offers; the dark one matches the UI's
// dark mode so that an image embedded in a dark page does not glare.
var themes = map[string]theme{
	"light": {bg: rgb(0xffffff), fg: rgb(0x222222), grid: rgb(0xd8d8d8), minorGrid: rgb(0xeeeeee), plotBG: rgb(0xffffff)},
	"dark":  {bg: rgb(0x111418), fg: rgb(0xd0d4d8), grid: rgb(0x3a4048), minorGrid: rgb(0x22272e), plotBG: rgb(0x161a1f)},
}

// rgb is an opaque colour from a 0xRRGGBB literal.
func rgb(v uint32) color.NRGBA {
	return color.NRGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 0xff}
}

// ParseHexColor reads AARRGGBB, RRGGBB or RGB hex.
func ParseHexColor(s string) (color.NRGBA, error) {
	switch len(s) {
	case 3:
		s = string([]byte{s[0], s[0], s[1], s[1], s[2], s[2]})
		fallthrough
	case 6:
		s = "ff" + s
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return color.NRGBA{}, fmt.Errorf("invalid color %q", s)
	}
	return color.NRGBA{A: uint8(v >> 24), R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v)}, nil
}

// Palettes are the named color palettes.
var Palettes = map[string][]uint32{
	// Green-Armytage's alphabet, bright colors first.
	"armytage": {0xff0000, 0x00a000, 0x0075dc, 0xffa405, 0x740aff, 0x993f00, 0x2bce48, 0xc20088,
		0x003380, 0x808080, 0x00998f, 0x8f7c00, 0x4c005c, 0x426600, 0xff5005, 0x5ef1f2, 0x990000, 0x9dcc00},
	"classic": {0xff0000, 0x00ff00, 0x0000ff, 0xff00ff, 0xffff00, 0x00ffff, 0xffa500, 0x808080},
	"reds":    {0x67000d, 0xa50f15, 0xcb181d, 0xef3b2c, 0xfb6a4a, 0xfc9272, 0xfcbba1},
	"greens":  {0x00441b, 0x006d2c, 0x238b45, 0x41ab5d, 0x74c476, 0xa1d99b, 0xc7e9c0},
	"blues":   {0x08306b, 0x08519c, 0x2171b5, 0x4292c6, 0x6baed6, 0x9ecae1, 0xc6dbef},
	"oranges": {0x7f2704, 0xa63603, 0xd94801, 0xf16913, 0xfd8d3c, 0xfdae6b, 0xfdd0a2},
	"purples": {0x3f007d, 0x54278f, 0x6a51a3, 0x807dba, 0x9e9ac8, 0xbcbddc, 0xdadaeb},
	"greys":   {0x000000, 0x252525, 0x525252, 0x737373, 0x969696, 0xbdbdbd, 0xd9d9d9},
}

// PaletteColors returns the colors of a palette name or (,c1,c2,) list.
func PaletteColors(name string) ([]color.NRGBA, error) { return palette(name) }

// palette returns the colors of a palette name or (,c1,c2,) list.
func palette(name string) ([]color.NRGBA, error) {
	if name == "" {
		name = "armytage"
	}
	if strings.HasPrefix(name, "(") {
		var out []color.NRGBA
		for _, p := range strings.Split(strings.Trim(name, "(,)"), ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			c, err := ParseHexColor(p)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("empty palette %s", name)
		}
		return out, nil
	}
	vs, ok := Palettes[name]
	if !ok {
		return nil, fmt.Errorf("unknown palette %q", name)
	}
	out := make([]color.NRGBA, len(vs))
	for i, v := range vs {
		out[i] = rgb(v)
	}
	return out, nil
}

// Validate checks the chart's settings.
func (c *Chart) Validate() error {
	switch {
	case c.Width < 10 || c.Width > 4000 || c.Height < 10 || c.Height > 4000:
		return fmt.Errorf("chart size %dx%d out of range: width and height must be 10 to 4000", c.Width, c.Height)
	case c.Step <= 0 || c.End <= c.Start:
		return fmt.Errorf("chart range [%d, %d) step %d is empty", c.Start, c.End, c.Step)
	}
	switch c.Layout {
	case "", "image", "canvas", "iw", "ih":
	default:
		return fmt.Errorf("unknown layout %q: use canvas, image, iw or ih", c.Layout)
	}
	if _, ok := themes[c.theme()]; !ok {
		return fmt.Errorf("unknown theme %q: use light or dark", c.Theme)
	}
	for i, a := range c.Axes {
		for _, b := range []string{a.Upper, a.Lower} {
			if b != "" {
				if _, err := strconv.ParseFloat(b, 64); err != nil {
					return fmt.Errorf("axis %d: bound %q is not a number", i, b)
				}
			}
		}
		switch a.Scale {
		case "", "linear", "log", "log-linear", "pow2", "sqrt":
		default:
			return fmt.Errorf("axis %d: unknown scale %q: use linear, log, log-linear, pow2 or sqrt", i, a.Scale)
		}
		if _, err := palette(a.Palette); err != nil {
			return fmt.Errorf("axis %d: %w", i, err)
		}
	}
	return nil
}

// theme is the chart's theme name, "light" when none is set.
func (c *Chart) theme() string {
	if c.Theme == "" {
		return "light"
	}
	return c.Theme
}

// axis returns the settings of y axis i; an axis the request did not
// configure gets the defaults (linear, automatic bounds).
func (c *Chart) axis(i int) Axis {
	if i < len(c.Axes) {
		return c.Axes[i]
	}
	return Axis{}
}

// scale maps values of one y axis to pixels.
type scale struct {
	lo, hi       float64
	top, bottom  float64
	f            func(float64) float64
	ticks        []Tick
	label        string
	used         bool
	labelW       float64 // widest tick label
	heatmapLines int
}

// y maps a value to a vertical pixel position: the scale's lower bound at
// the bottom of the plot, its upper bound at the top, through the axis's
// scale function (log, power) so that the mapping is linear in f(v).
func (s *scale) y(v float64) float64 {
	a, b := s.f(s.lo), s.f(s.hi)
	fv := s.f(v)
	if b == a {
		return (s.top + s.bottom) / 2
	}
	y := s.bottom - (fv-a)/(b-a)*(s.bottom-s.top)
	// Keep far-off values near the plot so strokes stay finite.
	return math.Max(s.top-10, math.Min(s.bottom+10, y))
}

// scaleFunc is the transform of an Atlas axis scale: linear, log (values
// at or below zero drawn at the bottom, as Atlas does), pow2 and sqrt
// (sign-preserving, so negative values mirror positive ones).
func scaleFunc(name string) func(float64) float64 {
	switch name {
	case "log", "log-linear":
		return func(v float64) float64 {
			if v <= 0 {
				return math.Log10(1e-12)
			}
			return math.Log10(v)
		}
	case "pow2":
		return func(v float64) float64 { return math.Copysign(v*v, v) }
	case "sqrt":
		return func(v float64) float64 { return math.Copysign(math.Sqrt(math.Abs(v)), v) }
	}
	return func(v float64) float64 { return v }
}
