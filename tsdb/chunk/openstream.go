package chunk

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"unsafe"
)

// The stream of an open block holds its committed values in the mode's
// integer domain: the first value's 8 bytes (little-endian), then, for each
// further value, the zigzag delta from the one before in width bits,
// packed LSB-first from bit 64. The bits after the last delta, up to the
// byte boundary, are zero, and so is the buffer from there to its
// capacity: a delta is or-ed into place without clearing bytes first.
// Whatever shortens the stream clears what it cuts off.
//
// Storing the first value apart keeps it out of the width: the first
// value of a float block is a 64-bit pattern, while its deltas need 49
// bits for a full-precision random walk and none for a constant.

// streamBase is the size of the first value.
const streamBase = 8

// push appends v, whose present bit is set, to the stream.
func (o *Open) push(v float64) {
	u := o.toDomain(v)
	if o.mode != modeFloat {
		o.method &= quotientMethods(float64(int64(u)), o.mode-1, v)
	}
	o.pushDomain(u)
}

// pushDomain appends the domain value u, whose present bit is set.
func (o *Open) pushDomain(u uint64) { o.pushDomainAt(o.presentCount()-1, u) }

// pushDomainAt appends u as the value of index i of a stream being rebuilt.
func (o *Open) pushDomainAt(i int, u uint64) {
	if i == 0 {
		clear(o.stream)
		o.stream = extend(o.stream[:0], streamBase)
		binary.LittleEndian.PutUint64(o.stream, u)
		o.prev = u
		return
	}
	d := u - o.prev
	z := uint64(int64(d)<<1) ^ uint64(int64(d)>>63)
	if w := uint8(bits.Len64(z)); w > o.width {
		o.widen(w, i-1)
	}
	o.putDelta(i-1, z)
	o.prev = u
}

// putDelta writes delta k, z < 2^width, at the end of the stream.
func (o *Open) putDelta(k int, z uint64) {
	w := uint(o.width)
	if w == 0 {
		return
	}
	off := 64 + uint(k)*w
	o.stream = extend(o.stream, int((off+w+7)>>3))
	i, sh := int(off>>3), off&7
	if i+9 <= cap(o.stream) {
		// Fast path: an 8-byte read-modify-write and the ninth byte for a
		// delta that reaches it (58 bits or more; z>>64 is 0 in Go). Bytes
		// past the stream's length but within its capacity get or-ed with
		// zeros.
		b := o.stream[i : i+9]
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)|z<<sh)
		b[8] |= byte(z >> (64 - sh))
		return
	}
	// Slow path: the end of the buffer.
	for rem := w; rem > 0; {
		i, sh := off>>3, off&7
		o.stream[i] |= byte(z << sh)
		take := min(8-sh, rem)
		z >>= take
		off += take
		rem -= take
	}
}

// widen repacks the first nd deltas with w bits each.
func (o *Open) widen(w uint8, nd int) {
	var buf [MaxOpenSlots]uint64
	r := newDeltaReader(o.stream, o.width)
	for k := range nd {
		buf[k] = r.at(k)
	}
	clear(o.stream[streamBase:])
	o.stream = o.stream[:streamBase]
	o.width = w
	for k := range nd {
		o.putDelta(k, buf[k])
	}
}

// extend returns s with length n (at least its own); the new bytes are
// zero because the buffer past a stream is. It grows the buffer by an
// eighth rather than doubling, to the allocator's size class (which
// slices.Grow of a nil slice rounds to, where make would leave the rest of
// the class unused): heads hold a block per series, and at a million
// series of 60 values growing by a quarter left 26 of 203 bytes a series
// unused (docs/benchmarks.md, "Memory per series at a million series").
func extend(s []byte, n int) []byte {
	if n <= len(s) {
		return s
	}
	if n > cap(s) {
		grown := slices.Grow([]byte(nil), max(n, len(s)+len(s)/8+16))[:len(s)]
		copy(grown, s)
		s = grown
	}
	return s[:n]
}

// deltaReader reads the deltas of a stream.
type deltaReader struct {
	s    []byte
	w    uint
	mask uint64
	fast int // deltas before this index load with one 8-byte read
}

func newDeltaReader(s []byte, w uint8) deltaReader {
	r := deltaReader{s: s, w: uint(w), mask: math.MaxUint64}
	if w < 64 {
		r.mask = 1<<w - 1
	}
	// Delta k starts at byte 8 + k·w/8 and an 8-byte load from there must
	// stay inside s and cover it (w + 7 ≤ 64).
	if w > 0 && w <= 57 && len(s) >= 16 {
		r.fast = (len(s)-16)*8/int(w) + 1
	}
	return r
}

// at returns delta k (zigzag-encoded).
func (r *deltaReader) at(k int) uint64 {
	off := 64 + uint(k)*r.w
	if k < r.fast {
		return binary.LittleEndian.Uint64(r.s[off>>3:]) >> (off & 7) & r.mask
	}
	return r.slow(off)
}

func (r *deltaReader) slow(off uint) uint64 {
	var z uint64
	for got := uint(0); got < r.w; {
		pos := off + got
		b := uint64(r.s[pos>>3] >> (pos & 7))
		take := min(8-pos&7, r.w-got)
		z |= (b & (1<<take - 1)) << got
		got += take
	}
	return z
}

// base returns the first committed value in the domain.
func (o *Open) base() uint64 { return binary.LittleEndian.Uint64(o.stream) }

// appendDomain appends the first cnt committed values in the mode's
// integer domain, xored with flip, to dst.
func (o *Open) appendDomain(dst []uint64, cnt int, flip uint64) []uint64 {
	if cnt == 0 {
		return dst
	}
	base := len(dst)
	dst = extendUint64s(dst, cnt)
	o.domainRun(dst[base:], flip)
	return dst
}

// domainRun sets out to the first len(out) > 0 committed values in the
// mode's integer domain, xored with flip. The loop over the deltas that
// load with one 8-byte read is kept apart from the rest, so that it
// inlines to a load, a shift, a mask and an add.
func (o *Open) domainRun(out []uint64, flip uint64) {
	u := o.base()
	if o.width == 0 {
		for j := range out {
			out[j] = u ^ flip
		}
		return
	}
	out[0] = u ^ flip
	r := newDeltaReader(o.stream, o.width)
	deltas := out[1:]
	fast := min(len(deltas), r.fast)
	w, mask := r.w, r.mask
	p := unsafe.Pointer(unsafe.SliceData(r.s))
	off := uint(64)
	if w > 57 && len(r.s) >= 17 {
		// Deltas of 58 bits or more (floats that change sign) may span 9
		// bytes: a second load for the ninth, while it lies in the stream.
		fast = min(len(deltas), (len(r.s)-17)*8/int(w)+1)
		for k := range deltas[:fast] {
			// Safe: off>>3 + 9 <= len(r.s) for k < fast, as computed.
			x := binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, off>>3))[:]) >> (off & 7)
			x |= uint64(*(*byte)(unsafe.Add(p, off>>3+8))) << (64 - off&7)
			off += w
			z := x & mask
			u += uint64(int64(z>>1) ^ -int64(z&1))
			deltas[k] = u ^ flip
		}
	} else {
		for k := range deltas[:fast] {
			// Safe: k < r.fast, so the 8 bytes from off>>3 lie inside the
			// stream (newDeltaReader).
			x := binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, off>>3))[:])
			z := x >> (off & 7) & mask
			off += w
			u += uint64(int64(z>>1) ^ -int64(z&1))
			deltas[k] = u ^ flip
		}
	}
	for k := fast; k < len(deltas); k++ {
		z := r.slow(64 + uint(k)*w)
		u += uint64(int64(z>>1) ^ -int64(z&1))
		deltas[k] = u ^ flip
	}
}

// decodeCommitted appends the committed slots [0, n) to dst.
func (o *Open) decodeCommitted(dst []float64) []float64 {
	base := len(dst)
	n := int(o.n)
	dst = grow(dst, n)
	out := dst[base:]
	if n == 0 {
		return dst
	}
	count := o.presentCount()
	if count == n {
		// Fast path: every slot present, in order.
		o.decodeRun(out)
		return dst
	}
	for i := range out {
		out[i] = Missing
	}
	if count == 0 {
		return dst
	}
	// Decode into the tail of out, then move each value to its slot, front
	// to back: a value's slot is never after its packed position.
	packed := out[n-count:]
	o.decodeRun(packed)
	src := n - count
	for word, p := range o.present {
		for p != 0 {
			i := word*64 + bits.TrailingZeros64(p)
			p &= p - 1
			out[i] = out[src]
			if i != src {
				out[src] = Missing
			}
			src++
		}
	}
	return dst
}

// decodeRun decodes the first len(out) committed values: their integers
// first, then one loop per mode, so that nothing but the arithmetic is
// left per value.
func (o *Open) decodeRun(out []float64) {
	if len(out) == 0 {
		return
	}
	// The integers go into out's own memory, each converted in place.
	// Safe: uint64 and float64 have the same size and alignment.
	us := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(out))), len(out))
	o.domainRun(us, 0)
	if o.mode == modeFloat {
		for j, u := range us {
			out[j] = math.Float64frombits(unorderBits(u))
		}
		return
	}
	d, inv := divisors[o.mode-1], inverses[o.mode-1]
	method := o.method
	if method == mulFlag|fmaFlag {
		method = mulFlag
	}
	switch method {
	case mulFlag:
		for j, u := range us {
			out[j] = float64(int64(u)) * inv
		}
	case fmaFlag:
		for j, u := range us {
			x := float64(int64(u))
			q := x * inv
			out[j] = math.FMA(math.FMA(-q, d, x), inv, q)
		}
	default:
		for j, u := range us {
			out[j] = float64(int64(u)) / d
		}
	}
}
