package chunk

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unsafe"
)

// bitWriter packs values LSB-first into bytes. A 64-bit accumulator keeps
// the per-value cost to a shift, an or and, every 64 bits, one 8-byte store.
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint // valid bits in acc, < 64
}

// write appends the low nbits bits of v (nbits <= 64; higher bits must be 0).
func (w *bitWriter) write(v uint64, nbits uint) {
	if nbits == 0 {
		return
	}
	w.acc |= v << w.n
	if w.n+nbits < 64 {
		w.n += nbits
		return
	}
	w.buf = binary.LittleEndian.AppendUint64(w.buf, w.acc)
	// Shifts of 64 or more yield 0 in Go, which is what an empty rest needs.
	w.acc = v >> (64 - w.n)
	w.n = w.n + nbits - 64
}

// finish flushes the partial accumulator and returns the buffer.
func (w *bitWriter) finish() []byte {
	for w.n > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.n -= min(w.n, 8)
	}
	return w.buf
}

// bitReader reads what bitWriter wrote. Reading past the end yields zero bits
// and sets overrun, so a decoder checks once at the end instead of per value.
type bitReader struct {
	src     []byte
	pos     int // next byte of src to load
	acc     uint64
	n       uint // valid bits in acc
	overrun bool
}

func newBitReader(src []byte) bitReader { return bitReader{src: src} }

// load returns the next 64 bits of input (zero-padded) and how many are real.
func (r *bitReader) load() (uint64, uint) {
	if r.pos+8 <= len(r.src) {
		// Fast path: a whole word is available.
		w := binary.LittleEndian.Uint64(r.src[r.pos:])
		r.pos += 8
		return w, 64
	}
	// Slow path: the tail of the input.
	var w uint64
	avail := uint(len(r.src)-r.pos) * 8
	for i := 0; r.pos < len(r.src); i++ {
		w |= uint64(r.src[r.pos]) << (8 * i)
		r.pos++
	}
	return w, avail
}

// read returns the next nbits bits (nbits <= 64).
func (r *bitReader) read(nbits uint) uint64 {
	if nbits <= r.n {
		v := r.acc & (1<<nbits - 1)
		r.acc >>= nbits
		r.n -= nbits
		return v
	}
	low, have := r.acc, r.n
	w, avail := r.load()
	need := nbits - have
	if avail < need {
		r.overrun = true
	}
	var v uint64
	if need == 64 {
		v = w
	} else {
		v = low | (w&(1<<need-1))<<have
	}
	r.acc = w >> need
	if avail > need {
		r.n = avail - need
	} else {
		r.n = 0
	}
	return v
}

// tbCode describes the truncated binary code for values in [0, m): with
// k = floor(log2 m) and u = 2^(k+1) - m, the u smallest values take k bits
// and the rest k+1 bits. Unlike plain bit-packing, which rounds every value
// up to a whole bit width, this loses at most 0.09 bits per value, which is
// what lets uniform noise (counter rates, gauge steps) compress to its entropy.
type tbCode struct {
	k uint
	u uint64
}

// maxTBRange bounds m so that 2^(k+1) fits in 64 bits.
const maxTBRange = 1 << 62

func newTBCode(m uint64) tbCode {
	k := uint(bits.Len64(m)) - 1 // m >= 1
	return tbCode{k: k, u: uint64(1)<<(k+1) - m}
}

// size returns the code length of v in bits.
func (c tbCode) size(v uint64) uint {
	if v < c.u {
		return c.k
	}
	return c.k + 1
}

// Truncated-binary sections are laid out split: first the k-bit prefix of
// every code at fixed positions i*k, then one extra bit for each long code,
// in order. A decoder then loads each prefix independently instead of
// waiting for the previous code's length; only the running count of long
// codes is serial. The size is the same as codes written back to back.

// pack writes codes (each < m) in the split layout.
func (c tbCode) pack(w *bitWriter, codes []uint64) {
	for _, v := range codes {
		if v < c.u {
			w.write(v, c.k)
		} else {
			w.write(c.u+(v-c.u)>>1, c.k)
		}
	}
	for _, v := range codes {
		if v >= c.u {
			w.write((v-c.u)&1, 1)
		}
	}
}

// unpack decodes len(out) codes from src into out (as raw uint64 bits in
// float64 slots) and returns the number of bytes of src it used, or -1 when
// src is too short.
func (c tbCode) unpack(out []float64, src []byte) int {
	n := uint(len(out))
	k, u := c.k, c.u
	ebase := n * k // bit offset of the extra bits
	var extra uint // long codes so far
	i := uint(0)
	if k <= 56 && len(src) >= 8 {
		// Fast path: code i's prefix is loaded with 8 bytes at byte pos>>3,
		// which stays inside src while pos>>3 + 8 <= len(src), that is for
		// i < fast.
		fast := n
		if k > 0 {
			fast = min(fast, (uint(len(src)-8)*8)/k+1)
		}
		i, extra = unpackFast(out[:fast], src, k, u, ebase)
	}
	// Slow path: the last codes and very wide ones.
	for ; i < n; i++ {
		p, ok := bitsAt(src, i*k, k)
		if !ok {
			return -1
		}
		if p >= u {
			b, ok := bitsAt(src, ebase+extra, 1)
			if !ok {
				return -1
			}
			p += p - u + b
			extra++
		}
		out[i] = math.Float64frombits(p)
	}
	end := ebase + extra
	if int((end+7)>>3) > len(src) {
		return -1
	}
	return int((end + 7) >> 3)
}

// unpackFast decodes codes into out while every prefix load stays inside
// src (the caller sized out so) and every extra bit does, and returns how
// many it decoded and how many of them were long. It works on groups of
// 64 codes: a loop of independent loads takes their prefixes and notes
// which are long in a bitmap (prefixes), then the group's extra bits,
// loaded at once, go to the long codes only, found by their bits
// (lengthen). Each loop is a leaf function of its own, so that its state
// fits in registers: one loop doing both per code spilled four values to
// the stack per code, and it was the largest part of the grouped sum on a
// freshly loaded server (sealed random walks, long codes half the time).
func unpackFast(out []float64, src []byte, k uint, u uint64, ebase uint) (i, extra uint) {
	lim := uint(len(src)) * 8
	base := unsafe.Pointer(unsafe.SliceData(src))
	ep, pos := ebase, uint(0)
	for g := 0; g < len(out); g += 64 {
		grp := out[g:min(g+64, len(out))]
		var longs uint64
		longs, pos = prefixes(grp, base, pos, k, u)
		n := uint(bits.OnesCount64(longs))
		if ep+n > lim {
			// Fewer extra bits than long codes: corrupt. The caller's
			// slow path decodes this group code by code and finds where.
			return uint(g), ep - ebase
		}
		var e uint64 // the group's extra bits, in order from bit 0
		if b, sh := ep>>3, ep&7; b+9 <= uint(len(src)) {
			// Fast path: 8 bytes and the ninth for what they miss (a
			// shift by 64 gives 0 in Go).
			e = binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(base, b))[:])>>sh |
				uint64(*(*byte)(unsafe.Add(base, b+8)))<<(64-sh)
		} else {
			// The end of src, where the extra bits are: its last 8 bytes
			// (len(src) >= 8, as prefixes loaded 8) hold bits
			// [lim-64, lim), and ep >= lim-64 here, with ep+n <= lim.
			e = binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(base, len(src)-8))[:]) >> (ep - (lim - 64))
		}
		ep += n
		lengthen(grp, longs, u, e)
	}
	return uint(len(out)), ep - ebase
}

// prefixes sets grp[j] (at most 64 codes) to the k-bit prefix of the code
// at bit pos+j*k of base, as raw bits, and returns a bitmap of the long
// codes (prefix >= u; bit j for code j) and the bit position after them.
// The caller makes sure every 8-byte load stays inside src.
//
//go:noinline
func prefixes(grp []float64, base unsafe.Pointer, pos, k uint, u uint64) (longs uint64, end uint) {
	mask := uint64(1)<<k - 1
	for j := range grp {
		// Safe: the caller's sizing (unpackFast).
		w := binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(base, pos>>3))[:])
		p := w >> (pos & 7) & mask
		pos += k
		grp[j] = math.Float64frombits(p)
		// Filled from the top: u-1-p wraps for a long code.
		longs = longs>>1 | (u-1-p)>>63<<63
	}
	return longs >> (64 - uint(len(grp))), pos
}

// lengthen completes the long codes of grp, marked in longs, with the
// extra bits in e, one each in order: a long code with prefix p is
// 2p - u + its bit.
//
//go:noinline
func lengthen(grp []float64, longs, u, e uint64) {
	for ; longs != 0; longs &= longs - 1 {
		j := bits.TrailingZeros64(longs)
		p := math.Float64bits(grp[j])
		grp[j] = math.Float64frombits(p + p - u + e&1)
		e >>= 1
	}
}

// bitsAt reads n <= 64 bits at bit offset pos, LSB-first.
func bitsAt(src []byte, pos, n uint) (uint64, bool) {
	if n == 0 {
		return 0, true
	}
	if int((pos+n+7)>>3) > len(src) {
		return 0, false
	}
	var v uint64
	for got := uint(0); got < n; {
		b := uint64(src[(pos+got)>>3] >> ((pos + got) & 7))
		take := min(8-(pos+got)&7, n-got)
		v |= (b & (1<<take - 1)) << got
		got += take
	}
	return v, true
}
