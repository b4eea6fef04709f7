package chunk

import (
	"math"
)

// Scaled encodings store values that are integers divided by a small
// divisor d, such as counter rates (an integer delta divided by the
// publishing interval in seconds) or decimals (a value with k decimal
// places). The integers are packed with frame of reference or deltas.
// Reconstruction repeats the division that produced the value, so it is
// bit-exact. Division is slow, so the encoder checks two cheaper ways per
// block and flags the one that reproduces every value's bits: a plain
// multiplication by 1/d, or that product corrected once with a fused
// multiply-add (Markstein's method), which is exact for nearly all values.

// divisors are tried in order; the first that represents every value wins,
// which keeps the integers small. Indexes are part of the format.
var divisors = [...]float64{1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 100, 120, 300, 600,
	1000, 3600, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// inverses holds 1/d for each divisor, so that the hot paths multiply
// rather than divide (TestInverses checks it against the division).
var inverses = [len(divisors)]float64{1, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 10, 1.0 / 12,
	1.0 / 15, 1.0 / 20, 1.0 / 30, 1.0 / 60, 1.0 / 100, 1.0 / 120, 1.0 / 300, 1.0 / 600, 1.0 / 1000,
	1.0 / 3600, 1.0 / 1e4, 1.0 / 1e5, 1.0 / 1e6, 1.0 / 1e7, 1.0 / 1e8, 1.0 / 1e9}

// The divisor byte: the divisor's index in the low 6 bits and the method.
const (
	mulFlag     = 0x80 // q = x * (1/d)
	fmaFlag     = 0x40 // q = fma(fma(-q, d, x), 1/d, q) with q = x * (1/d)
	indexMask   = 0x3f
	maxExactInt = 1 << 53
)

// quotient computes x/d the way the flags say.
func quotient(x, d, inv float64, flags byte) float64 {
	switch flags {
	case mulFlag:
		return x * inv
	case fmaFlag:
		q := x * inv
		return math.FMA(math.FMA(-q, d, x), inv, q)
	}
	return x / d
}

// scaleInts finds the smallest divisor that represents every value of
// e.vals and fills e.bits with the integers in the unsigned order domain. It
// returns the divisor byte (index | method flag).
//
// One pass per divisor tried, and usually one divisor: it starts from the
// smallest divisor of the first value and moves on only when a value needs
// another. A value fits when the block's decoding method reproduces it;
// the multiplication and the fused correction are checked first, so the
// division (an order of magnitude slower) is computed only for the rare
// block that neither reproduces.
func (e *Encoder) scaleInts() (byte, bool) {
	vals := e.vals
	di := nextDivisor(vals[0], 0)
	needDiv := false
	for di < len(divisors) {
		d := divisors[di]
		inv := 1 / d
		bits := extendUint64s(e.bits[:0], len(vals))
		mul, fma := true, true
		bad, retry := -1, false
		for i, v := range vals {
			r := math.Round(v * d)
			if !(r <= maxExactInt && r >= -maxExactInt) {
				bad = i
				break
			}
			x := float64(int64(r))
			want := math.Float64bits(v)
			q := x * inv
			mul = mul && math.Float64bits(q) == want
			fma = fma && math.Float64bits(math.FMA(math.FMA(-q, d, x), inv, q)) == want
			if !mul && !fma && !needDiv {
				// Slow path: only the division can decode this block, so
				// every value must survive it; start over checking that.
				needDiv, retry = true, true
				break
			}
			if needDiv && math.Float64bits(x/d) != want {
				bad = i
				break
			}
			bits[i] = uint64(int64(r)) ^ signBit
		}
		e.bits = bits
		switch {
		case retry:
		case bad < 0:
			b := byte(di)
			switch {
			case mul:
				b |= mulFlag
			case fma:
				b |= fmaFlag
			}
			return b, true
		default:
			di = nextDivisor(vals[bad], di+1)
			needDiv = false
		}
	}
	e.bits = e.bits[:0]
	return 0, false
}

// nextDivisor returns the index of the first divisor from index from on
// that represents v, or len(divisors).
func nextDivisor(v float64, from int) int {
	for di := from; di < len(divisors); di++ {
		if fitsDivisor(v, divisors[di]) {
			return di
		}
	}
	return len(divisors)
}

func decodeScaled(out []float64, delta bool, src []byte) error {
	if len(src) < 1 {
		return corruptf("missing divisor")
	}
	di, method := src[0]&indexMask, src[0]&^indexMask
	if int(di) >= len(divisors) || method == mulFlag|fmaFlag {
		return corruptf("bad divisor byte %#x", src[0])
	}
	p, err := unpackCodes(out, delta, false, src[1:])
	if err != nil {
		return err
	}
	unscale(out, p, delta, divisors[di], method)
	return nil
}

// unscale turns codes into values in one pass: x = ref + code (FOR) or the
// running sum of lo + code (delta), then x / d by the block's method. One
// loop per combination keeps branches out of the per-value path.
func unscale(out []float64, p packing, delta bool, d float64, method byte) {
	inv := 1 / d
	ref := int64(p.ref ^ signBit)
	switch {
	case !delta && method == mulFlag:
		for i, c := range out {
			out[i] = float64(ref+int64(math.Float64bits(c))) * inv
		}
	case !delta && method == fmaFlag:
		for i, c := range out {
			x := float64(ref + int64(math.Float64bits(c)))
			q := x * inv
			out[i] = math.FMA(math.FMA(-q, d, x), inv, q)
		}
	case !delta:
		for i, c := range out {
			out[i] = float64(ref+int64(math.Float64bits(c))) / d
		}
	default:
		x, lo := ref, p.lo
		out[0] = quotient(float64(x), d, inv, method)
		for i := 1; i < len(out); i++ {
			x += lo + int64(math.Float64bits(out[i]))
			out[i] = quotient(float64(x), d, inv, method)
		}
	}
}
