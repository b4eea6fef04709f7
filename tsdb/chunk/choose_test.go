package chunk

import (
	"math"
	"math/rand/v2"
	"testing"
)

// encodeAs writes vals in encoding enc whatever the statistics say, or
// returns false when enc cannot represent them. It is the oracle that
// TestChoiceNearSmallest holds the cheap choice against.
func encodeAs(vals []float64, enc Encoding) ([]byte, bool) {
	var e Encoder
	e.vals = e.vals[:0]
	for _, v := range vals {
		if !IsMissing(v) {
			e.vals = append(e.vals, v)
		}
	}
	e.haveVals = true
	pres := e.choosePresence(vals)
	dst := appendBlockStart(nil, len(vals))
	dst = appendPresence(dst, vals, pres)
	if pres == presNone {
		return nil, false
	}
	switch enc {
	case EncConst:
		for _, v := range e.vals {
			if math.Float64bits(v) != math.Float64bits(e.vals[0]) {
				return nil, false
			}
		}
		dst = appendCompactFloat(dst, e.vals[0])
	case EncDict:
		if dictSize(e.vals) < 0 {
			return nil, false
		}
		dst = e.appendDict(dst)
	case EncScaledFOR, EncScaledDelta, EncFloatFOR, EncFloatDelta:
		scaled := enc <= EncScaledDelta
		if scaled {
			d, ok := e.scaleInts()
			if !ok {
				return nil, false
			}
			dst = append(dst, d)
		} else {
			e.floatInts()
		}
		if len(e.bits) < 2 {
			return nil, false
		}
		st := scan(e.bits)
		if enc == EncScaledFOR || enc == EncFloatFOR {
			p, ok := forPacking(st.lo, st.hi, !scaled)
			if !ok {
				return nil, false
			}
			dst = e.appendFOR(dst, p)
		} else {
			p, ok := deltaPacking(e.bits[0], st.dlo, st.dhi, !scaled)
			if !ok {
				return nil, false
			}
			dst = e.appendDelta(dst, p)
		}
	case EncXOR:
		dst = e.appendXOR(dst)
	}
	dst[0] |= Version<<6 | byte(pres)<<4 | byte(enc)
	return dst, true
}

// smallest returns the size of the smallest encoding of vals.
func smallest(t *testing.T, name string, vals []float64) (int, Encoding) {
	t.Helper()
	best, bestEnc := math.MaxInt, EncXOR
	for enc := range Encoding(numEncodings) {
		b, ok := encodeAs(vals, enc)
		if !ok {
			continue
		}
		got, err := Decode(nil, b)
		if err != nil {
			t.Fatalf("%s as %v: %v", name, enc, err)
		}
		sameBits(t, name+" as "+enc.String(), got, vals)
		if len(b) < best {
			best, bestEnc = len(b), enc
		}
	}
	return best, bestEnc
}

// TestChoiceNearSmallest: the encoding picked from statistics is, on
// every shape, within 2% (and 2 bytes) of the smallest of all encodings,
// each written out in full.
func TestChoiceNearSmallest(t *testing.T) {
	t.Parallel()
	check := func(name string, vals []float64) {
		t.Helper()
		got := Encode(nil, vals)
		if all := countMissing(vals) == len(vals); all {
			return
		}
		want, enc := smallest(t, name, vals)
		if len(got) > want+want/50+2 {
			h, _ := ReadHeader(got)
			t.Errorf("%s: %d bytes as %v, smallest is %d as %v", name, len(got), h.Encoding, want, enc)
		}
	}
	for _, n := range []int{2, 7, 60, 120} {
		for name, vals := range shapes(n) {
			check(name, vals)
		}
	}
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 200 {
		check("mixed", mixedBlock(r, 1+i%120))
	}
}

func countMissing(vals []float64) int {
	n := 0
	for _, v := range vals {
		if IsMissing(v) {
			n++
		}
	}
	return n
}

// mixedBlock draws a block from a random mixture of the kinds of values
// series carry, with random gaps.
func mixedBlock(r *rand.Rand, n int) []float64 {
	vals := make([]float64, n)
	kind := r.IntN(7)
	walk, level := r.NormFloat64()*1e3, float64(r.IntN(1000))
	gap := r.Float64() * 0.3
	for i := range vals {
		switch kind {
		case 0: // a step function of floats
			if r.IntN(10) == 0 {
				level = r.NormFloat64()
			}
			vals[i] = level
		case 1: // rates over 60 s
			vals[i] = float64(r.IntN(1+r.IntN(10000))) / 60
		case 2:
			walk += r.NormFloat64()
			vals[i] = walk
		case 3: // an enum of odd values
			vals[i] = []float64{0.1, 1e9 + 0.5, -3}[r.IntN(3)]
		case 4: // integers with rare large jumps
			vals[i] = level
			level += float64(r.IntN(3))
			if r.IntN(40) == 0 {
				level += 1e12
			}
		case 5: // few-digit decimals
			vals[i] = math.Round(r.NormFloat64()*1e5) / 1e3
		default: // float32-precision gauges
			vals[i] = float64(float32(r.NormFloat64()))
		}
		if r.Float64() < gap {
			vals[i] = Missing
		}
	}
	return vals
}
