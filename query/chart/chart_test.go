package chart

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"strconv"
	"testing"
	"time"
)

func sample(n int, lines int) *Chart {
	c := &Chart{Width: 700, Height: 300, Title: "requests per second", Start: 1_700_000_000_000, Step: 60_000, Loc: time.UTC}
	c.End = c.Start + int64(n)*c.Step
	for l := 0; l < lines; l++ {
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = 1000*float64(l+1) + 300*math.Sin(float64(i)/20+float64(l))
			if i%97 == 13 {
				vs[i] = math.NaN()
			}
		}
		c.Lines = append(c.Lines, Line{Label: "line " + strconv.Itoa(l), Values: vs})
	}
	return c
}

func TestRenderSample(t *testing.T) {
	c := sample(180, 4)
	c.Lines[1].Style = "area"
	s, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WritePNG(&b, s); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 700 || img.Bounds().Dy() != 300 {
		t.Errorf("size %v", img.Bounds())
	}
	if dir := os.Getenv("CHART_OUT"); dir != "" {
		os.WriteFile(dir+"/sample.png", b.Bytes(), 0o644)
		var sv bytes.Buffer
		WriteSVG(&sv, s)
		os.WriteFile(dir+"/sample.svg", sv.Bytes(), 0o644)
	}
}
