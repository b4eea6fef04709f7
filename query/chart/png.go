package chart

import (
	"bufio"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// Rasterize draws a scene into an image.
func Rasterize(s *Scene) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, s.W, s.H))
	draw.Draw(img, img.Bounds(), image.NewUniform(s.Background), image.Point{}, draw.Src)
	var r vector.Rasterizer
	for _, op := range s.Ops {
		switch o := op.(type) {
		case Rect:
			rect := image.Rect(int(math.Round(o.X)), int(math.Round(o.Y)), int(math.Round(o.X+o.W)), int(math.Round(o.Y+o.H)))
			if rect.Dx() == 0 && o.W > 0 {
				rect.Max.X++ // keep hairline spans visible
			}
			draw.Draw(img, rect.Intersect(img.Bounds()), image.NewUniform(o.Fill), image.Point{}, draw.Over)
		case Polyline:
			strokePath(img, &r, o)
		case Polygon:
			fillPath(img, &r, o.Points, o.Fill)
		case Text:
			drawText(img, o)
		}
	}
	return img
}

// WritePNG rasterizes a scene and encodes it as PNG. Speed matters more
// than the last bytes for charts served on every dashboard refresh.
func WritePNG(w io.Writer, s *Scene) error {
	bw := bufio.NewWriter(w)
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(bw, Rasterize(s)); err != nil {
		return err
	}
	return bw.Flush()
}

// bounds of points padded by pad, clipped to the image.
func pathBounds(img *image.RGBA, pts []Point, pad float64) image.Rectangle {
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		x0, y0 = math.Min(x0, p.X), math.Min(y0, p.Y)
		x1, y1 = math.Max(x1, p.X), math.Max(y1, p.Y)
	}
	r := image.Rect(int(math.Floor(x0-pad)), int(math.Floor(y0-pad)), int(math.Ceil(x1+pad)), int(math.Ceil(y1+pad)))
	return r.Intersect(img.Bounds())
}

// strokePath rasterizes each segment as a quad of the stroke width with
// anti-aliasing, in a rasterizer sized to the path's bounds.
func strokePath(img *image.RGBA, r *vector.Rasterizer, o Polyline) {
	hw := math.Max(o.Width, 1) / 2
	b := pathBounds(img, o.Points, hw+1)
	if b.Empty() || len(o.Points) < 2 {
		return
	}
	r.Reset(b.Dx(), b.Dy())
	ox, oy := float32(b.Min.X), float32(b.Min.Y)
	for i := 1; i < len(o.Points); i++ {
		p, q := o.Points[i-1], o.Points[i]
		dx, dy := q.X-p.X, q.Y-p.Y
		l := math.Hypot(dx, dy)
		if l == 0 {
			continue
		}
		// Extend each segment by half the width so joints overlap.
		ex, ey := dx/l*hw*0.5, dy/l*hw*0.5
		nx, ny := -dy/l*hw, dx/l*hw
		r.MoveTo(float32(p.X-ex+nx)-ox, float32(p.Y-ey+ny)-oy)
		r.LineTo(float32(q.X+ex+nx)-ox, float32(q.Y+ey+ny)-oy)
		r.LineTo(float32(q.X+ex-nx)-ox, float32(q.Y+ey-ny)-oy)
		r.LineTo(float32(p.X-ex-nx)-ox, float32(p.Y-ey-ny)-oy)
		r.ClosePath()
	}
	r.Draw(img, b, image.NewUniform(o.Stroke), image.Point{})
}

// fillPath fills a closed polygon (an area, a stack band) with antialiased
// edges. The rasterizer works on the polygon's bounding box only, so a
// small shape on a large image costs what the shape covers.
func fillPath(img *image.RGBA, r *vector.Rasterizer, pts []Point, c color.NRGBA) {
	b := pathBounds(img, pts, 1)
	if b.Empty() || len(pts) < 3 {
		return
	}
	r.Reset(b.Dx(), b.Dy())
	ox, oy := float32(b.Min.X), float32(b.Min.Y)
	r.MoveTo(float32(pts[0].X)-ox, float32(pts[0].Y)-oy)
	for _, p := range pts[1:] {
		r.LineTo(float32(p.X)-ox, float32(p.Y)-oy)
	}
	r.ClosePath()
	r.Draw(img, b, image.NewUniform(c), image.Point{})
}

var face = basicfont.Face7x13

// drawText draws a string in the fixed bitmap font at its anchor. Rotated
// text (a y-axis label) is drawn into a small image and copied pixel by
// pixel turned a quarter, since the font drawer only writes horizontally.
func drawText(img *image.RGBA, t Text) {
	w := textWidth(t.S)
	x := t.X
	switch t.Anchor {
	case Middle:
		x -= w / 2
	case End:
		x -= w
	}
	if !t.Rotate {
		d := font.Drawer{Dst: img, Src: image.NewUniform(t.Color), Face: face, Dot: fixed.P(int(math.Round(x)), int(math.Round(t.Y)))}
		d.DrawString(t.S)
		return
	}
	// Draw horizontally into a scratch image, then copy it turned 90°
	// counter-clockwise around (X, Y).
	tmp := image.NewRGBA(image.Rect(0, 0, int(w)+1, lineH))
	d := font.Drawer{Dst: tmp, Src: image.NewUniform(t.Color), Face: face, Dot: fixed.P(0, ascent)}
	d.DrawString(t.S)
	cx, cy := int(math.Round(t.X)), int(math.Round(t.Y))
	for ty := 0; ty < tmp.Bounds().Dy(); ty++ {
		for tx := 0; tx < tmp.Bounds().Dx(); tx++ {
			c := tmp.RGBAAt(tx, ty)
			if c.A == 0 {
				continue
			}
			// (tx - w/2, ty - ascent) rotated by -90°: (dy, -dx)
			dx, dy := tx-int(w/2), ty-ascent
			px, py := cx+dy, cy-dx
			if image.Pt(px, py).In(img.Bounds()) {
				img.SetRGBA(px, py, c)
			}
		}
	}
}
