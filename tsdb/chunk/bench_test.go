package chunk

import (
	"math"
	"testing"
)

var benchShapes = []string{"const", "counter-rate", "random-walk", "decimals", "leading-gap", "random-bits"}

func BenchmarkEncode(b *testing.B) {
	s := shapes(120)
	for _, name := range benchShapes {
		b.Run(name, func(b *testing.B) {
			var e Encoder
			buf := make([]byte, 0, 2048)
			b.SetBytes(int64(8 * len(s[name])))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				buf = e.Encode(buf[:0], s[name])
			}
			reportPerValue(b, cpu, len(s[name]), len(buf))
		})
	}
}

// BenchmarkSeal is the store's sealing path: an open block of 120 steps
// encoded as a sealed block.
func BenchmarkSeal(b *testing.B) {
	s := shapes(120)
	for _, name := range benchShapes {
		b.Run(name, func(b *testing.B) {
			var o Open
			for i, v := range s[name] {
				if !IsMissing(v) {
					o.Write(i, v, OpSet)
				}
			}
			var e Encoder
			buf := make([]byte, 0, 2048)
			b.SetBytes(int64(8 * len(s[name])))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				buf = e.Seal(buf[:0], &o, len(s[name]))
			}
			reportPerValue(b, cpu, len(s[name]), len(buf))
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	s := shapes(120)
	for _, name := range benchShapes {
		b.Run(name, func(b *testing.B) {
			enc := Encode(nil, s[name])
			out := make([]float64, 0, 120)
			b.SetBytes(int64(8 * len(s[name])))
			b.ReportAllocs()
			var err error
			for b.Loop() {
				if out, err = Decode(out[:0], enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(s[name])), "ns/value")
		})
	}
}

func BenchmarkOpenWrite(b *testing.B) {
	s := shapes(120)
	for _, name := range []string{"rates", "walk", "const", "counter-rate", "random-walk"} {
		b.Run(name, func(b *testing.B) {
			vals := make([]float64, 120)
			w := 50.0
			for i := range vals {
				switch name {
				case "counter-rate", "random-walk":
					vals[i] = s[name][i]
				case "rates":
					vals[i] = float64(100+i*7%60) / 60
				case "walk":
					w += math.Sin(float64(i)) * 0.37
					vals[i] = w
				default:
					vals[i] = 3
				}
			}
			var o Open
			b.ReportAllocs()
			i := 0
			cpu := cpuTime()
			for b.Loop() {
				if i == len(vals) {
					o.Reset()
					i = 0
				}
				o.Write(i, vals[i], OpSet)
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			// The memory of a whole block of these values.
			var full Open
			for i, v := range vals {
				full.Write(i, v, OpSet)
			}
			b.ReportMetric(float64(full.Bytes()), "block-B")
		})
	}
}

func BenchmarkOpenValues(b *testing.B) {
	var o Open
	w := 50.0
	for i := range 120 {
		w += math.Sin(float64(i)) * 0.37
		o.Write(i, w, OpSet)
	}
	out := make([]float64, 0, 120)
	b.ReportAllocs()
	for b.Loop() {
		out = o.Values(out[:0], 120)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*120), "ns/value")
}

// reportPerValue reports the bytes per value of the last block and the
// wall and CPU nanoseconds per value (cpu0: cpuTime before the loop).
func reportPerValue(b *testing.B, cpu0 int64, values, size int) {
	b.Helper()
	n := float64(b.N * values)
	b.ReportMetric(float64(size)/float64(values), "B/value")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/value")
	b.ReportMetric(float64(cpuTime()-cpu0)/n, "cpu-ns/value")
}
