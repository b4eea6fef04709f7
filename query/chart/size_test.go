package chart

import (
	"bytes"
	"strings"
	"testing"
)

// TestChartSizeBounded is issue #17 item 7: with many lines, layout=canvas
// or iw grew the image past 4000 px (tens of thousands of pixels high).
// Every layout stays within MaxSide on each side, legend included, and the
// legend says how many lines it left out.
func TestChartSizeBounded(t *testing.T) {
	t.Parallel()
	for _, layout := range []string{"", "image", "canvas", "iw", "ih"} {
		for _, wh := range [][2]int{{4000, 4000}, {700, 300}, {4000, 10}} {
			c := sample(60, 2000)
			c.Layout, c.Width, c.Height = layout, wh[0], wh[1]
			s, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			if s.W > MaxSide || s.H > MaxSide {
				t.Errorf("layout=%q %dx%d with 2000 lines: image %dx%d, over %d", layout, wh[0], wh[1], s.W, s.H, MaxSide)
			}
			if layout == "canvas" && wh[0] == 4000 {
				var b bytes.Buffer
				if err := WriteSVG(&b, s); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(b.String(), " more") {
					t.Errorf("layout=canvas: a cut legend does not say how many lines it left out")
				}
			}
		}
	}
}
