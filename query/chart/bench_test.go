package chart

import (
	"io"
	"testing"
)

// BenchmarkRenderPNG renders 10 lines of 1 440 points (a day at one
// minute) to PNG, the size a dashboard panel asks for.
func BenchmarkRenderPNG(b *testing.B) {
	c := sample(1440, 10)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Render(c)
		if err != nil {
			b.Fatal(err)
		}
		if err := WritePNG(io.Discard, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderSVG is the same chart as SVG.
func BenchmarkRenderSVG(b *testing.B) {
	c := sample(1440, 10)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Render(c)
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteSVG(io.Discard, s); err != nil {
			b.Fatal(err)
		}
	}
}
