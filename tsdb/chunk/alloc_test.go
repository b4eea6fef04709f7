package chunk

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDecodeAllocs holds reading a sealed block to its budget: decoding
// into a buffer the caller reuses allocates nothing, for every encoding
// the encoder picks (constant, integer deltas, scaled decimals, XOR). A
// query decodes thousands of blocks; one allocation each would be the
// garbage collector's whole workload. `make test` runs it without -race.
func TestDecodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := rand.New(rand.NewPCG(1, 2))
	shapes := map[string]func(i int) float64{
		"constant": func(int) float64 { return 42 },
		"counter":  func(i int) float64 { return float64(1000 + 7*i) },
		"decimal":  func(i int) float64 { return math.Round(r.Float64()*1e4) / 100 },
		"gauge":    func(int) float64 { return r.NormFloat64() },
	}
	for name, f := range shapes {
		vals := make([]float64, 120)
		for i := range vals {
			vals[i] = f(i)
		}
		block := Encode(nil, vals)
		dst := make([]float64, 0, len(vals))
		var err error
		if a := testing.AllocsPerRun(50, func() { dst, err = Decode(dst[:0], block) }); a != 0 {
			t.Errorf("%s: Decode allocates %v times per block, want 0", name, a)
		}
		if err != nil || len(dst) != len(vals) {
			t.Fatalf("%s: Decode = %d values, %v", name, len(dst), err)
		}
	}
}

// TestOpenWriteAllocs: writing into a series' open block, the store's
// per-datapoint path, allocates nothing once the block's buffers exist.
func TestOpenWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var o Open
	for slot := range 120 {
		o.Write(slot, float64(slot), OpSet)
	}
	o.Reset()
	slot := 0
	if a := testing.AllocsPerRun(100, func() { o.Write(slot%120, float64(slot), OpSet); slot++ }); a != 0 {
		t.Errorf("Open.Write allocates %v times per datapoint, want 0", a)
	}
}

// TestSealAllocs holds the store's sealing path to its budget: sealing an
// open block and encoding a block allocate nothing once the Encoder's
// scratch space and the destination have grown, whatever the encoding.
func TestSealAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var e Encoder
	dst := make([]byte, 0, 4096)
	for name, vals := range shapes(120) {
		var o Open
		for i, v := range vals {
			o.Write(i, v, OpSet)
		}
		if a := testing.AllocsPerRun(20, func() { dst = e.Seal(dst[:0], &o, len(vals)) }); a != 0 {
			t.Errorf("%s: Seal allocates %v times per block, want 0", name, a)
		}
		if a := testing.AllocsPerRun(20, func() { dst = e.Encode(dst[:0], vals) }); a != 0 {
			t.Errorf("%s: Encode allocates %v times per block, want 0", name, a)
		}
	}
}
