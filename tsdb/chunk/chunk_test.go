package chunk

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// shapes returns realistic blocks: constants, counters' rates, random walks,
// decimals, enums, gaps and NaN payloads.
func shapes(n int) map[string][]float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func(f func(i int) float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = f(i)
		}
		return v
	}
	walk := 50.0
	counter := 0.0
	return map[string][]float64{
		"const":        gen(func(int) float64 { return 42 }),
		"const-frac":   gen(func(int) float64 { return 0.1 }),
		"zero-neg":     gen(func(int) float64 { return math.Copysign(0, -1) }),
		"all-missing":  gen(func(int) float64 { return Missing }),
		"counter-rate": gen(func(int) float64 { return math.Floor(60*3*(0.5+rng.Float64())) / 60 }),
		"counter-raw":  gen(func(int) float64 { counter += math.Floor(100 * rng.Float64()); return counter }),
		"random-walk":  gen(func(int) float64 { walk += rng.Float64() - 0.5; return math.Abs(walk) }),
		"neg-walk":     gen(func(int) float64 { walk -= rng.Float64(); return walk - 100 }),
		"decimals":     gen(func(int) float64 { return math.Round(rng.Float64()*1e4) / 100 }),
		"enum":         gen(func(i int) float64 { return []float64{0.3, 17.25, 1e6 + 0.1}[i%3] }),
		"small-ints":   gen(func(i int) float64 { return float64(i % 3) }),
		"leading-gap":  gen(func(i int) float64 { return ifMissing(i == 0, float64(i)) }),
		"sparse":       gen(func(i int) float64 { return ifMissing(i%17 != 3, rng.Float64()) }),
		"alternating":  gen(func(i int) float64 { return ifMissing(i%2 == 0, 7) }),
		"nan-payloads": gen(func(i int) float64 { return math.Float64frombits(0x7FF8000000000000 | uint64(i)) }),
		"specials": gen(func(i int) float64 {
			return []float64{math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.SmallestNonzeroFloat64, 0}[i%5]
		}),
		"huge-ints":     gen(func(i int) float64 { return float64(int64(1)<<53 - int64(i)) }),
		"random-bits":   gen(func(int) float64 { return math.Float64frombits(rng.Uint64()) }),
		"counter-reset": gen(func(i int) float64 { return float64(i%40) * 1.5 }),
	}
}

func ifMissing(missing bool, v float64) float64 {
	if missing {
		return Missing
	}
	return v
}

func sameBits(t *testing.T, name string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: decoded %d values, want %d", name, len(got), len(want))
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("%s: value %d = %x, want %x", name, i, math.Float64bits(got[i]), math.Float64bits(want[i]))
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 7, 60, 120, 1000} {
		for name, vals := range shapes(n) {
			var e Encoder
			enc := e.Encode([]byte{0xAA}, vals) // keep a prefix: Encode appends
			if enc[0] != 0xAA {
				t.Fatalf("%s: Encode overwrote dst", name)
			}
			got, err := Decode([]float64{-1}, enc[1:])
			if err != nil {
				t.Fatalf("%s/%d: Decode: %v", name, n, err)
			}
			if got[0] != -1 {
				t.Fatalf("%s: Decode overwrote dst", name)
			}
			sameBits(t, name, got[1:], vals)
			h, err := ReadHeader(enc[1:])
			if err != nil || h.Points != n {
				t.Fatalf("%s: ReadHeader = %+v, %v", name, h, err)
			}
		}
	}
}

func TestChoosesCheapest(t *testing.T) {
	t.Parallel()
	want := map[string]Encoding{
		"const":        EncConst,
		"all-missing":  EncConst,
		"counter-rate": EncScaledFOR,
		"counter-raw":  EncScaledDelta,
		"random-walk":  EncFloatDelta,
		"decimals":     EncScaledFOR,
		"enum":         EncDict,
		"random-bits":  EncXOR,
	}
	s := shapes(120)
	for name, enc := range want {
		h, err := ReadHeader(Encode(nil, s[name]))
		if err != nil {
			t.Fatal(err)
		}
		if h.Encoding != enc {
			t.Errorf("%s encoded as %v, want %v", name, h.Encoding, enc)
		}
	}
}

func TestSizes(t *testing.T) {
	t.Parallel()
	// Budgets in bytes for 120 values; they guard against regressions in the
	// entropy coding (a counter rate of ~180/min needs ~7.5 bits a value).
	s := shapes(120)
	f := func(name string, max int) {
		t.Helper()
		if got := len(Encode(nil, s[name])); got > max {
			t.Errorf("%s: %d bytes, want <= %d", name, got, max)
		}
	}
	f("const", 4)
	f("all-missing", 3)
	f("enum", 60)
	f("counter-rate", 125)
	f("leading-gap", 30)
	f("random-walk", 120*58/8+30)
}

func TestBitReaderWriter(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	type item struct {
		v uint64
		n uint
	}
	var items []item
	var w bitWriter
	for range 10000 {
		n := uint(rng.IntN(65))
		v := rng.Uint64()
		if n < 64 {
			v &= 1<<n - 1
		}
		items = append(items, item{v, n})
		w.write(v, n)
	}
	r := newBitReader(w.finish())
	for i, it := range items {
		if got := r.read(it.n); got != it.v {
			t.Fatalf("item %d: read(%d) = %x, want %x", i, it.n, got, it.v)
		}
	}
	if r.overrun {
		t.Fatal("overrun on exact input")
	}
	r.read(64)
	if !r.overrun {
		t.Fatal("no overrun past the end")
	}
}

func TestTruncatedBinary(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, m := range []uint64{1, 2, 3, 5, 60, 61, 64, 1000, 1<<40 + 7, 1<<57 + 3, maxTBRange - 1} {
		c := newTBCode(m)
		for _, n := range []int{1, 3, 8, 9, 63, 64, 65, 120, 200} {
			codes := []uint64{0, m - 1, m / 2, c.u, c.u - 1}
			for len(codes) < n {
				codes = append(codes, rng.Uint64N(m))
			}
			codes = codes[:n]
			for i := range codes {
				codes[i] = min(codes[i], m-1)
			}
			var w bitWriter
			c.pack(&w, codes)
			buf := w.finish()
			total := uint(0)
			for _, v := range codes {
				total += c.size(v)
			}
			if want := int(total+7) / 8; len(buf) != want {
				t.Errorf("m=%d n=%d: %d bytes written, size says %d", m, n, len(buf), want)
			}
			out := make([]float64, n)
			if used := c.unpack(out, buf); used != len(buf) {
				t.Fatalf("m=%d n=%d: unpack used %d of %d bytes", m, n, used, len(buf))
			}
			for i, v := range codes {
				if got := math.Float64bits(out[i]); got != v {
					t.Errorf("m=%d n=%d: code %d = %d, want %d", m, n, i, got, v)
				}
			}
			if len(buf) > 0 && c.unpack(out, buf[:len(buf)-1]) >= 0 {
				t.Errorf("m=%d n=%d: unpack of a truncated section succeeded", m, n)
			}
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	t.Parallel()
	good := Encode(nil, shapes(120)["random-walk"])
	for name, b := range map[string][]byte{
		"empty":             nil,
		"one byte":          {Version << 6},
		"common, no values": {Version<<6 | commonFlag | 6},
		"bad version":       append([]byte{0}, good[1:]...),
		"bad enc":           {Version<<6 | 7, 1},
		"zero points":       {Version << 6, 0},
		"too many":          binary.AppendUvarint([]byte{Version << 6}, MaxPoints+1),
		"truncated":         good[:len(good)/2],
		"bad runs":          {Version<<6 | 1<<4, 3, 1, 9},
		"short map":         {Version<<6 | 2<<4, 100, 1},
	} {
		if _, err := Decode(nil, b); err == nil {
			t.Errorf("%s: Decode succeeded", name)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, vals := range shapes(16) {
		b := make([]byte, 0, 8*len(vals))
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := len(b) / 8
		if n == 0 || n > MaxPoints {
			return
		}
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		got, err := Decode(nil, Encode(nil, vals))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		sameBits(t, "fuzz", got, vals)
	})
}

func FuzzDecode(f *testing.F) {
	for _, vals := range shapes(16) {
		f.Add(Encode(nil, vals))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(nil, b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same values.
		again, err := Decode(nil, Encode(nil, got))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		sameBits(t, "fuzz", again, got)
	})
}

func TestInverses(t *testing.T) {
	t.Parallel()
	for i, d := range divisors {
		if inverses[i] != 1/d {
			t.Errorf("inverses[%d] = %v, want 1/%v = %v", i, inverses[i], d, 1/d)
		}
	}
}
