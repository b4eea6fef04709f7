package chart

import "image/color"

// Point is a position in pixels, y growing downwards.
type Point struct{ X, Y float64 }

// Op is one drawing primitive of a scene.
type Op interface{ isOp() }

// Rect is a filled rectangle.
type Rect struct {
	X, Y, W, H float64
	Fill       color.NRGBA
}

// Polyline is a stroked open path.
type Polyline struct {
	Points []Point
	Stroke color.NRGBA
	Width  float64
}

// Polygon is a filled closed path.
type Polygon struct {
	Points []Point
	Fill   color.NRGBA
}

// Text is a single line of text. X is its anchor: the start, middle or
// end of the text; Y is the baseline.
type Text struct {
	X, Y   float64
	S      string
	Anchor Anchor
	Color  color.NRGBA
	Rotate bool // 90° counter-clockwise, for y axis labels
}

// Anchor is where a text's X lies.
type Anchor uint8

// Anchors.
const (
	Start Anchor = iota
	Middle
	End
)

// isOp marks the drawing operations a Scene may hold; renderers switch on
// the concrete type, so the set is closed to this package.
func (Rect) isOp()     {}
func (Polyline) isOp() {}
func (Polygon) isOp()  {}
func (Text) isOp()     {}

// Scene is a laid-out chart.
type Scene struct {
	W, H       int
	Background color.NRGBA
	Ops        []Op
}

// add appends a drawing operation. Operations are painted in order, so the
// grid is added before the lines and the legend last.
func (s *Scene) add(op Op) { s.Ops = append(s.Ops, op) }

// Font metrics of the fixed font.
const (
	charW   = 7
	lineH   = 13
	ascent  = 11
	padding = 4
)

// textWidth is the width of s in pixels.
func textWidth(s string) float64 {
	n := 0
	for range s {
		n++
	}
	return float64(n * charW)
}
