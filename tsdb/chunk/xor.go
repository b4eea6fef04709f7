package chunk

import (
	"math"
	"math/bits"
)

// The XOR encoding (Gorilla, Pelkonen et al. 2015) is the fallback that
// represents anything: each value is XORed with the previous one; an equal
// value costs one bit, and otherwise the meaningful bits are stored, reusing
// the previous window of leading and trailing zeros when they fit.
//
// Per value: '0' for equal; '1','0' + the bits in the previous window; or
// '1','1' + 6 bits of leading zeros + 6 bits of (length-1) + the bits.

func xorSize(vals []float64) int {
	n := 64
	prev := math.Float64bits(vals[0])
	lead, trail := -1, 0
	for _, v := range vals[1:] {
		b := math.Float64bits(v)
		x := b ^ prev
		prev = b
		if x == 0 {
			n++
			continue
		}
		l, t := bits.LeadingZeros64(x), bits.TrailingZeros64(x)
		if lead >= 0 && l >= lead && t >= trail {
			n += 2 + 64 - lead - trail
			continue
		}
		lead, trail = l, t
		n += 2 + 12 + 64 - l - t
	}
	return n
}

func (e *Encoder) appendXOR(dst []byte) []byte {
	e.bw = bitWriter{buf: dst}
	w := &e.bw
	prev := math.Float64bits(e.vals[0])
	w.write(prev, 64)
	lead, trail := -1, 0
	for _, v := range e.vals[1:] {
		b := math.Float64bits(v)
		x := b ^ prev
		prev = b
		if x == 0 {
			w.write(0, 1)
			continue
		}
		l, t := bits.LeadingZeros64(x), bits.TrailingZeros64(x)
		if lead >= 0 && l >= lead && t >= trail {
			w.write(1, 2) // '1','0'
			w.write(x>>uint(trail), uint(64-lead-trail))
			continue
		}
		lead, trail = l, t
		w.write(3, 2) // '1','1'
		w.write(uint64(l), 6)
		w.write(uint64(64-l-t-1), 6)
		w.write(x>>uint(t), uint(64-l-t))
	}
	return w.finish()
}

func decodeXOR(out []float64, src []byte) error {
	r := newBitReader(src)
	prev := r.read(64)
	out[0] = math.Float64frombits(prev)
	var lead, width uint
	for i := 1; i < len(out); i++ {
		if r.read(1) == 0 {
			out[i] = math.Float64frombits(prev)
			continue
		}
		if r.read(1) == 1 {
			lead = uint(r.read(6))
			width = uint(r.read(6)) + 1
			if lead+width > 64 {
				return corruptf("xor window %d+%d bits", lead, width)
			}
		} else if width == 0 {
			return corruptf("xor window reused before set")
		}
		x := r.read(width) << (64 - lead - width)
		prev ^= x
		out[i] = math.Float64frombits(prev)
	}
	if r.overrun {
		return corruptf("xor section too short")
	}
	return nil
}
