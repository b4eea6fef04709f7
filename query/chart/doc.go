// Package chart draws time-series charts. Render lays a Chart out into a
// Scene of primitives (rectangles, polylines, polygons, text); the same
// scene is written as SVG or rasterized to PNG, so both formats show the
// same chart pixel for pixel in layout.
//
// Text uses a fixed 7×13 pixel font (PNG) and a monospace font of the same
// advance (SVG), which keeps measuring text exact and rendering fast.
package chart
