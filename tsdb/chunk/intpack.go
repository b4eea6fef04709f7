package chunk

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Frame-of-reference and delta packing of uint64 sequences in an unsigned
// order domain. The scaled encodings map their int64s into it by flipping
// the sign bit, the float encodings by the order-preserving bit trick in
// float.go, so both share this code.
//
// Both store their reference values in the natural domain of the caller:
// zigzag varints for scaled integers (small), 8 raw bytes for float bits
// (which are large and would need 10 varint bytes).
//

const signBit = 1 << 63

// Ranges are stored exactly for scaled integers, whose ranges are small.
// Float ranges are large (a 49-bit mantissa walk has 49-bit deltas), so they
// are rounded up to a quantized range M = (32+j) << e and the reference is
// rounded down to a multiple of 2^e: the header shrinks from about 24 to 11
// bytes, and the coarser range costs under 0.05 bits per value.

// packing is the parameter set of one FOR or delta section.
type packing struct {
	ref   uint64 // FOR: the lowest value; delta: the first value
	lo    int64  // delta: the lowest delta (a multiple of 2^e when quantized)
	m     uint64 // range of the coded values, [0, m)
	q     uint64 // quantized range code (float only)
	quant bool
}

// quantize returns the smallest code q = e<<5 | j with (32+j) << e >= need.
func quantize(need uint64) (q, m uint64) {
	// The smallest e with 63·2^e >= need: need's bit length minus 6, or
	// one more (63 < 64).
	e := uint(max(0, bits.Len64(need)-6))
	if need > 63<<e {
		e++
	}
	j := (need + 1<<e - 1) >> e // ceil(need / 2^e), <= 63
	if j < 32 {
		j = 32
	}
	return uint64(e)<<5 | (j - 32), j << e
}

func dequantize(q uint64) (m uint64, e uint, ok bool) {
	e, j := uint(q>>5), q&31
	if e > 56 {
		return 0, 0, false
	}
	return (32 + j) << e, e, true
}

// forPacking computes FOR parameters for values in [lo, hi], or ok=false if
// the range is too wide.
func forPacking(lo, hi uint64, quant bool) (p packing, ok bool) {
	if hi-lo >= maxTBRange/2 {
		return p, false
	}
	p = packing{ref: lo, m: hi - lo + 1, quant: quant}
	if quant {
		// Round the reference down to 2^e; a larger e may be needed once
		// rounding widens the range, hence the loop, which starts from the
		// exponent the unrounded range needs and so runs once or twice.
		q0, _ := quantize(hi - lo + 1)
		for e := uint(q0 >> 5); ; e++ {
			ref := lo &^ (1<<e - 1)
			q, m := quantize(hi - ref + 1)
			if me, _, _ := dequantize(q); uint(q>>5) <= e && me == m {
				p.ref, p.q, p.m = ref, q, m
				break
			}
		}
	}
	return p, true
}

// deltaPacking computes delta parameters for a sequence that starts at
// first and whose deltas lie in [lo, hi], or ok=false.
func deltaPacking(first uint64, lo, hi int64, quant bool) (p packing, ok bool) {
	if uint64(hi)-uint64(lo) >= maxTBRange/2 {
		return p, false
	}
	p = packing{ref: first, lo: lo, m: uint64(hi) - uint64(lo) + 1, quant: quant}
	if quant {
		q0, _ := quantize(uint64(hi) - uint64(lo) + 1)
		for e := uint(q0 >> 5); ; e++ {
			l := lo >> e << e // floor to a multiple of 2^e, also for negatives
			q, m := quantize(uint64(hi) - uint64(l) + 1)
			if uint(q>>5) <= e {
				p.lo, p.q, p.m = l, q, m
				break
			}
		}
	}
	return p, true
}

// headerSize is the size in bytes of the section header for p.
func (p packing) headerSize(delta bool) int {
	n := 8 // float reference
	if !p.quant {
		n = varintLen(int64(p.ref ^ signBit))
	}
	if delta {
		n += varintLen(p.scaledLo())
	}
	if p.quant {
		return n + uvarintLen(p.q)
	}
	return n + uvarintLen(p.m)
}

// scaledLo is lo as stored: divided by 2^e when quantized.
func (p packing) scaledLo() int64 {
	if p.quant {
		return p.lo >> uint(p.q>>5)
	}
	return p.lo
}

func (p packing) appendHeader(dst []byte, delta bool) []byte {
	if p.quant {
		dst = binary.LittleEndian.AppendUint64(dst, p.ref)
	} else {
		dst = binary.AppendVarint(dst, int64(p.ref^signBit))
	}
	if delta {
		dst = binary.AppendVarint(dst, p.scaledLo())
	}
	if p.quant {
		return binary.AppendUvarint(dst, p.q)
	}
	return binary.AppendUvarint(dst, p.m)
}

func readPacking(src []byte, delta, quant bool) (packing, []byte, error) {
	p := packing{quant: quant}
	if quant {
		if len(src) < 8 {
			return p, nil, corruptf("short reference value")
		}
		p.ref, src = binary.LittleEndian.Uint64(src), src[8:]
	} else {
		x, k := binary.Varint(src)
		if k <= 0 {
			return p, nil, corruptf("bad reference value")
		}
		p.ref, src = uint64(x)^signBit, src[k:]
	}
	if delta {
		lo, k := binary.Varint(src)
		if k <= 0 {
			return p, nil, corruptf("bad minimum delta")
		}
		p.lo, src = lo, src[k:]
	}
	r, k := binary.Uvarint(src)
	if k <= 0 {
		return p, nil, corruptf("bad value range")
	}
	src = src[k:]
	if quant {
		m, e, ok := dequantize(r)
		if !ok {
			return p, nil, corruptf("bad range code %d", r)
		}
		p.q, p.m = r, m
		if p.lo > math.MaxInt64>>e || p.lo < math.MinInt64>>e {
			return p, nil, corruptf("minimum delta out of range")
		}
		p.lo <<= e
	} else {
		p.m = r
	}
	if p.m == 0 || p.m > maxTBRange {
		return p, nil, corruptf("bad value range %d", p.m)
	}
	return p, src, nil
}

func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

// appendFOR writes e.bits as a FOR section with parameters p.
func (e *Encoder) appendFOR(dst []byte, p packing) []byte {
	dst = p.appendHeader(dst, false)
	codes := extendUint64s(e.codes[:0], len(e.bits))
	for i, u := range e.bits {
		codes[i] = u - p.ref
	}
	e.codes = codes
	return e.packCodes(dst, newTBCode(p.m))
}

// appendDelta writes e.bits as a delta section with parameters p.
func (e *Encoder) appendDelta(dst []byte, p packing) []byte {
	dst = p.appendHeader(dst, true)
	b := e.bits
	codes := extendUint64s(e.codes[:0], len(b)-1)
	lo := uint64(p.lo)
	for i := 1; i < len(b); i++ {
		codes[i-1] = b[i] - b[i-1] - lo
	}
	e.codes = codes
	return e.packCodes(dst, newTBCode(p.m))
}

// extendUint64s extends dst by n elements.
func extendUint64s(dst []uint64, n int) []uint64 {
	if cap(dst)-len(dst) >= n {
		return dst[:len(dst)+n]
	}
	out := make([]uint64, len(dst)+n)
	copy(out, dst)
	return out
}

func (e *Encoder) packCodes(dst []byte, c tbCode) []byte {
	e.bw = bitWriter{buf: dst}
	c.pack(&e.bw, e.codes)
	return e.bw.finish()
}

// unpackCodes decodes the truncated-binary codes of a FOR or delta section
// into out (as raw uint64 bits in the float64 slots: len(out) codes for FOR,
// len(out)-1 for delta, starting at out[1]) and returns the section's
// parameters. Callers then turn codes into values in one fused pass.
func unpackCodes(out []float64, delta, quant bool, src []byte) (packing, error) {
	p, src, err := readPacking(src, delta, quant)
	if err != nil {
		return p, err
	}
	codes := out
	if delta {
		codes = out[1:]
	}
	if used := newTBCode(p.m).unpack(codes, src); used < 0 {
		return p, corruptf("value section too short")
	}
	return p, nil
}
