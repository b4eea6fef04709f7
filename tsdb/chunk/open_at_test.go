package chunk

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestOpenAt checks the point read against a full decode after every write
// of random sequences (forward, repeated and late writes, every mode), and
// after a snapshot round trip, which restores the encoder's running value.
func TestOpenAt(t *testing.T) {
	t.Parallel()
	gens := []func(r *rand.Rand) float64{
		func(r *rand.Rand) float64 { return float64(r.IntN(500)) / 60 },
		func(r *rand.Rand) float64 { return r.NormFloat64() * 100 },
		func(r *rand.Rand) float64 { return float64(r.IntN(10)) },
		func(r *rand.Rand) float64 {
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
	check := func(o *Open, what string, seed uint64, step int) {
		t.Helper()
		want := o.Values(nil, MaxOpenSlots)
		for s := -1; s <= MaxOpenSlots; s++ {
			got := o.At(s)
			w := Missing
			if s >= 0 && s < MaxOpenSlots {
				w = want[s]
			}
			if math.Float64bits(got) != math.Float64bits(w) {
				t.Fatalf("%s seed %d write %d: At(%d) = %v, want %v", what, seed, step, s, got, w)
			}
		}
	}
	for g, gen := range gens {
		for seed := range uint64(15) {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			var o Open
			slots := 1 + r.IntN(MaxOpenSlots)
			slot := 0
			for i := range 200 {
				switch r.IntN(10) {
				case 0:
					slot = r.IntN(slots)
				case 1, 2, 3:
				default:
					slot = min(slot+1+r.IntN(2), slots-1)
				}
				o.Write(slot, gen(r), Op(r.IntN(3)))
				if i%7 == 0 || i > 190 {
					check(&o, "write", seed, i)
				}
			}
			var o2 Open
			if _, err := o2.DecodeOpen(o.AppendTo(nil)); err != nil {
				t.Fatal(err)
			}
			check(&o2, "snapshot", seed, 0)
		}
	}
}

// TestOpenAtAllocs keeps the point read free of allocation.
func TestOpenAtAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var o Open
	for s := range 100 {
		o.Write(s, float64(s)/7, OpSet)
	}
	if n := testing.AllocsPerRun(100, func() { _ = o.At(98) + o.At(99) + o.At(5) }); n != 0 {
		t.Errorf("At allocates %v times, want 0", n)
	}
}
