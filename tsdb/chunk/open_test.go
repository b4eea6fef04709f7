package chunk

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// model is the reference the Open block must agree with.
type model [MaxOpenSlots]float64

func newModel() *model {
	var m model
	for i := range m {
		m[i] = Missing
	}
	return &m
}

func TestOpenMatchesModel(t *testing.T) {
	t.Parallel()
	gens := map[string]func(r *rand.Rand) float64{
		"rates":  func(r *rand.Rand) float64 { return float64(r.IntN(500)) / 60 },
		"floats": func(r *rand.Rand) float64 { return r.NormFloat64() * 100 },
		"ints":   func(r *rand.Rand) float64 { return float64(r.IntN(10)) },
		"bits":   func(r *rand.Rand) float64 { return math.Float64frombits(r.Uint64()) },
		"walk":   func(r *rand.Rand) float64 { return 1000 + r.Float64() },
		"mixed": func(r *rand.Rand) float64 {
			switch r.IntN(4) {
			case 0:
				return math.NaN()
			case 1:
				return float64(r.IntN(3))
			case 2:
				return 0.5
			}
			return r.Float64()
		},
	}
	for name, gen := range gens {
		for seed := range uint64(50) {
			r := rand.New(rand.NewPCG(seed, 7))
			var o Open
			m := newModel()
			slots := 1 + r.IntN(MaxOpenSlots)
			slot := 0
			for range 300 {
				// Mostly forward, sometimes the same step, sometimes late.
				switch r.IntN(10) {
				case 0:
					slot = r.IntN(slots)
				case 1, 2, 3:
				default:
					slot = min(slot+1+r.IntN(2), slots-1)
				}
				op := Op(r.IntN(3))
				v := gen(r)
				o.Write(slot, v, op)
				if v != v {
					v = Missing
				}
				m[slot] = op.Apply(m[slot], v)
			}
			got := o.Values(nil, slots)
			sameBits(t, name, got, m[:slots])

			// Snapshots restore the same block.
			var o2 Open
			rest, err := o2.DecodeOpen(o.AppendTo(nil))
			if err != nil || len(rest) != 0 {
				t.Fatalf("%s: DecodeOpen: %v, %d bytes left", name, err, len(rest))
			}
			sameBits(t, name+" snapshot", o2.Values(nil, slots), m[:slots])
			o2.Write(slots-1, 1, OpAdd)
			o.Write(slots-1, 1, OpAdd)
			sameBits(t, name+" after snapshot", o2.Values(nil, slots), o.Values(nil, slots))
		}
	}
}

func TestOpenShortStreams(t *testing.T) {
	t.Parallel()
	// Streams shorter than one 8-byte load, of every width.
	for _, v := range []float64{3, 1000, 1e6, 1.5, 123.456, 1e300} {
		for n := 1; n <= 4; n++ {
			var o Open
			want := make([]float64, 0, n+1)
			for i := range n {
				x := v * float64(i+1)
				o.Write(i, x, OpSet)
				want = append(want, x)
			}
			o.Write(n, v, OpSet) // commits the others
			want = append(want, v)
			sameBits(t, "short", o.Values(nil, n+1), want)
		}
	}
}

func TestOpenOps(t *testing.T) {
	t.Parallel()
	var o Open
	o.Write(3, 2, OpMax)
	o.Write(3, 5, OpMax)
	o.Write(3, 1, OpMax)
	o.Write(3, math.NaN(), OpMax)
	o.Write(4, 1, OpAdd)
	o.Write(4, 2.5, OpAdd)
	o.Write(5, 7, OpSet)
	o.Write(5, 8, OpSet)
	o.Write(5, math.NaN(), OpSet) // a NaN rate clears the step
	o.Write(6, 4, OpMin)
	o.Write(6, math.NaN(), OpMin)
	o.Write(6, 2, OpMin)
	o.Write(6, 3, OpMin)
	got := o.Values(nil, 7)
	want := []float64{Missing, Missing, Missing, 5, 3.5, Missing, 2}
	sameBits(t, "ops", got, want)
	if o.Empty() {
		t.Error("Empty() on a block with values")
	}
	o.Reset()
	if !o.Empty() {
		t.Error("Empty() false after Reset")
	}
}

func TestOpenCompact(t *testing.T) {
	t.Parallel()
	// Counter rates: about two bytes a value; full-precision gauges about
	// seven; constants one.
	r := rand.New(rand.NewPCG(1, 1))
	f := func(name string, gen func(i int) float64, max int) {
		t.Helper()
		var o Open
		for i := range 120 {
			o.Write(i, gen(i), OpSet)
		}
		if got := len(o.stream); got > max {
			t.Errorf("%s: %d bytes for 120 values, want <= %d", name, got, max)
		}
	}
	f("rates", func(int) float64 { return float64(100+r.IntN(60)) / 60 }, 8+120*8/8+1)
	walk := 50.0
	f("walk", func(int) float64 { walk += r.Float64() - 0.5; return walk }, 8+120*50/8+1)
	f("const", func(int) float64 { return 3 }, 8)
}

// TestOpenSnapshotVersion1 restores a snapshot in the format of version 1
// (zigzag deltas from zero, a whole number of bytes each), which
// checkpoints written before version 2 hold.
func TestOpenSnapshotVersion1(t *testing.T) {
	t.Parallel()
	f := func(name string, mode, method uint8, domain []uint64, gaps bool, want []float64) {
		t.Helper()
		var present [2]uint64
		n := 0
		for range domain {
			if gaps {
				n++ // slot 2i is empty, 2i+1 holds value i
			}
			present[n/64] |= 1 << (n % 64)
			n++
		}
		var prev, width uint64
		var zs []uint64
		for _, u := range domain {
			d := u - prev
			z := uint64(int64(d)<<1) ^ uint64(int64(d)>>63)
			width = max(width, uint64(bits.Len64(z)+7)/8)
			zs = append(zs, z)
			prev = u
		}
		snap := []byte{1, mode, byte(n), byte(n + 1), 1, byte(width), method}
		snap = binary.LittleEndian.AppendUint64(snap, math.Float64bits(7))
		snap = binary.LittleEndian.AppendUint64(snap, present[0])
		snap = binary.LittleEndian.AppendUint64(snap, present[1])
		snap = binary.AppendUvarint(snap, uint64(len(zs))*width)
		for _, z := range zs {
			for j := range width {
				snap = append(snap, byte(z>>(8*j)))
			}
		}
		snap = append(snap, 0xEE) // what follows the snapshot
		var o Open
		rest, err := o.DecodeOpen(snap)
		if err != nil || len(rest) != 1 || rest[0] != 0xEE {
			t.Fatalf("%s: DecodeOpen = %v, %v", name, rest, err)
		}
		var full []float64
		for _, v := range want {
			if gaps {
				full = append(full, Missing)
			}
			full = append(full, v)
		}
		full = append(full, Missing, 7)
		sameBits(t, name, o.Values(nil, n+2), full)
		// It keeps working: a write, and a snapshot in the new version.
		o.Write(n+1, 1, OpAdd)
		full[n+1] = 8
		var o2 Open
		if _, err := o2.DecodeOpen(o.AppendTo(nil)); err != nil {
			t.Fatalf("%s: DecodeOpen of version 2: %v", name, err)
		}
		sameBits(t, name+" v2", o2.Values(nil, n+2), full)
	}
	// Rates over 60 s (divisor index 11, multiplication reproduces them).
	var ints []uint64
	var rates []float64
	method := uint8(mulFlag | fmaFlag)
	for i := range 50 {
		x := int64(100 + i*37%90 - 45*(i%2))
		ints = append(ints, uint64(x))
		rates = append(rates, float64(x)/60)
		method &= quotientMethods(float64(x), 11, float64(x)/60)
	}
	f("rates", 12, method, ints, false, rates)
	f("rates-gaps", 12, method, ints, true, rates)
	var ordered []uint64
	var floats []float64
	w := -3.0
	for range 60 {
		w += 0.37
		ordered = append(ordered, orderBits(math.Float64bits(w)))
		floats = append(floats, w)
	}
	f("floats", modeFloat, 0, ordered, false, floats)
	f("floats-gaps", modeFloat, 0, ordered, true, floats)
}

func FuzzDecodeOpen(f *testing.F) {
	var o Open
	for i := range 10 {
		o.Write(i*3, float64(i)/60, OpSet)
	}
	f.Add(o.AppendTo(nil))
	f.Add([]byte{Version, 0, 0, 0, 0})
	// Version 1: the integers 5, 6, 7 in slots 0-2 as byte-wide zigzag
	// deltas from zero, and 7 in the tail at slot 3.
	v1 := []byte{openVersionBytes, 1, 3, 3, 1, 1, mulFlag | fmaFlag}
	v1 = binary.LittleEndian.AppendUint64(v1, math.Float64bits(7))
	v1 = binary.LittleEndian.AppendUint64(v1, 0b111)
	v1 = binary.LittleEndian.AppendUint64(v1, 0)
	f.Add(append(v1, 3, 10, 2, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o Open
		if _, err := o.DecodeOpen(b); err != nil {
			return
		}
		vals := o.Values(nil, MaxOpenSlots)
		o.Write(MaxOpenSlots-1, 1, OpAdd)
		o.Write(0, 1, OpAdd)
		_ = vals
	})
}

// TestSealMatchesValues: sealing an open block gives a block that decodes
// to its values, no larger than encoding those values from scratch, for
// random write sequences (late writes, ops, gaps, kinds that change) and
// for every slot count, including ones that cut the block.
func TestSealMatchesValues(t *testing.T) {
	t.Parallel()
	var e, ref Encoder
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 11))
		var o Open
		slots := 1 + r.IntN(MaxOpenSlots)
		gen := mixedBlock(r, slots)
		for i := range slots {
			if r.IntN(8) == 0 {
				o.Write(r.IntN(slots), gen[r.IntN(slots)], Op(r.IntN(3)))
			}
			o.Write(i, gen[i], OpSet)
		}
		for _, n := range []int{slots, max(1, slots-1), 1 + r.IntN(slots)} {
			want := o.Values(nil, n)
			block := e.Seal(nil, &o, n)
			got, err := Decode(nil, block)
			if err != nil {
				t.Fatalf("seed %d: Decode(Seal): %v", seed, err)
			}
			sameBits(t, "seal", got, want)
			if full := ref.Encode(nil, want); len(block) > len(full)+1 {
				t.Errorf("seed %d: Seal took %d bytes, Encode %d", seed, len(block), len(full))
			}
		}
	}
}

func TestSealShapes(t *testing.T) {
	t.Parallel()
	var e Encoder
	for name, vals := range shapes(MaxOpenSlots) {
		var o Open
		for i, v := range vals {
			if !IsMissing(v) {
				o.Write(i, v, OpSet)
			}
		}
		got, err := Decode(nil, e.Seal(nil, &o, len(vals)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// An open block stores NaN payloads as Missing.
		want := o.Values(nil, len(vals))
		sameBits(t, name, got, want)
	}
}

// TestOpenLoad: a sealed block loaded into an open block reads back the
// same, takes further writes like the block it was sealed from, and seals
// again to the same values.
func TestOpenLoad(t *testing.T) {
	t.Parallel()
	var e Encoder
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 5))
		slots := 1 + r.IntN(MaxOpenSlots)
		vals := mixedBlock(r, slots)
		var src Open
		for i, v := range vals {
			src.Write(i, v, OpSet)
		}
		var o Open
		o.Write(3, 99, OpSet) // Load replaces whatever was there
		if err := o.Load(e.Seal(nil, &src, slots)); err != nil {
			t.Fatalf("seed %d: Load: %v", seed, err)
		}
		sameBits(t, "load", o.Values(nil, slots), src.Values(nil, slots))
		for range 5 {
			slot, v, op := r.IntN(slots), vals[r.IntN(slots)], Op(r.IntN(3))
			o.Write(slot, v, op)
			src.Write(slot, v, op)
		}
		sameBits(t, "load+write", o.Values(nil, slots), src.Values(nil, slots))
		got, err := Decode(nil, e.Seal(nil, &o, slots))
		if err != nil {
			t.Fatal(err)
		}
		sameBits(t, "reseal", got, src.Values(nil, slots))
	}
	var o Open
	if err := o.Load(Encode(nil, make([]float64, MaxOpenSlots+1))); err == nil {
		t.Error("Load of a block longer than an open block succeeded")
	}
	if err := o.Load([]byte{Version << 6}); err == nil {
		t.Error("Load of a corrupt block succeeded")
	}
}

// TestOpenLoadAllocs: reopening a block allocates nothing once the open
// block's buffer has grown (`make test` runs it without -race).
func TestOpenLoadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var src, o Open
	for i := range 120 {
		src.Write(i, float64(i*7%60)/60, OpSet)
	}
	var e Encoder
	block := e.Seal(nil, &src, 120)
	if err := o.Load(block); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(50, func() { _ = o.Load(block) }); a != 0 {
		t.Errorf("Open.Load allocates %v times per block, want 0", a)
	}
}

func FuzzOpenLoad(f *testing.F) {
	for _, vals := range shapes(16) {
		f.Add(Encode(nil, vals))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var o Open
		if err := o.Load(b); err != nil {
			return
		}
		want, err := Decode(nil, b)
		if err != nil {
			t.Fatalf("Load accepted a block Decode rejects: %v", err)
		}
		sameBits(t, "fuzz", o.Values(nil, len(want)), want)
	})
}

// FuzzSeal: whatever is written into an open block seals into a block that
// decodes to the same values.
func FuzzSeal(f *testing.F) {
	for _, vals := range shapes(16) {
		b := make([]byte, 0, 9*len(vals))
		for i, v := range vals {
			b = append(b, byte(i))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var o Open
		for ; len(b) >= 9; b = b[9:] {
			o.Write(int(b[0]%MaxOpenSlots), math.Float64frombits(binary.LittleEndian.Uint64(b[1:])), Op(b[0]>>7))
		}
		var e Encoder
		for _, slots := range []int{MaxOpenSlots, 120, 1 + int(o.n)/2} {
			got, err := Decode(nil, e.Seal(nil, &o, slots))
			if err != nil {
				t.Fatalf("Decode(Seal): %v", err)
			}
			sameBits(t, "fuzz", got, o.Values(nil, slots))
		}
	})
}
