package chunk

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// Encoder encodes blocks. It picks each block's encoding from cheap
// statistics of its values — the kind of number (integers over a small
// divisor or arbitrary floats), the range of the values and of their
// deltas, how many deltas are zero — and computes exact sizes only for the
// two or three encodings those statistics leave in the running; it never
// writes an encoding just to measure it. VictoriaMetrics' lib/encoding
// chooses the same way (constant, constant delta, or a general encoding).
//
// Its scratch space is reused between calls, so an Encoder is not safe for
// concurrent use; the zero value is ready.
type Encoder struct {
	vals  []float64 // present values; valid when haveVals
	bits  []uint64  // present values in the block's unsigned domain
	codes []uint64  // truncated-binary codes being written
	runs  []int     // presence run lengths (Seal)
	tmp   []float64 // Seal's slow path
	bw    bitWriter

	haveVals bool
	scaled   bool // bits are scaled integers ^ signBit; else ordered float bits
	div      byte // the divisor byte when scaled
}

// Encode appends the encoding of vals (missing slots hold Missing) to dst.
// Every bit pattern, NaN payloads included, round-trips exactly.
func (e *Encoder) Encode(dst []byte, vals []float64) []byte {
	if len(vals) == 0 || len(vals) > MaxPoints {
		panic(fmt.Sprintf("BUG: chunk.Encode of %d values", len(vals)))
	}
	e.vals = e.vals[:0]
	for _, v := range vals {
		if !IsMissing(v) {
			e.vals = append(e.vals, v)
		}
	}
	e.haveVals = true
	pres := e.choosePresence(vals)
	head := len(dst)
	dst = appendBlockStart(dst, len(vals))
	dst = appendPresence(dst, vals, pres)
	enc := EncConst
	switch {
	case pres == presNone:
	case isConst(e.vals) && compactFloatSize(e.vals[0]) <= 3:
		// Fast path: a constant small integer.
		dst = appendCompactFloat(dst, e.vals[0])
	default:
		if d, ok := e.scaleInts(); ok {
			e.scaled, e.div = true, d
		} else {
			e.scaled = false
			e.floatInts()
		}
		enc, dst = e.appendValues(dst)
	}
	dst[head] |= Version<<6 | byte(pres)<<4 | byte(enc)
	return dst
}

// Encode is a convenience wrapper around a fresh Encoder.
func Encode(dst []byte, vals []float64) []byte {
	var e Encoder
	return e.Encode(dst, vals)
}

// Seal appends the encoding of the open block's slots [0, slots) to dst:
// a block that decodes to o.Values(nil, slots). It is the store's sealing
// path and costs a few nanoseconds per value: the open block already holds
// its values as integers of the right kind (it found the divisor while
// they were appended), so Seal reads them back without converting floats
// and goes straight to choosing the packing.
func (e *Encoder) Seal(dst []byte, o *Open, slots int) []byte {
	if slots <= 0 || slots > MaxOpenSlots {
		panic(fmt.Sprintf("BUG: chunk.Seal of %d slots", slots))
	}
	mask, ok := e.loadOpen(o, slots)
	if !ok {
		// Slow path: the newest value is of another kind than the rest (a
		// fraction after integers), or slots cut the committed values.
		e.tmp = o.Values(e.tmp[:0], slots)
		return e.Encode(dst, e.tmp)
	}
	count := len(e.bits)
	head := len(dst)
	dst = appendBlockStart(dst, slots)
	var pres presence
	switch count {
	case slots:
		pres = presAll
	case 0:
		pres = presNone
	default:
		pres, dst = e.appendMaskPresence(dst, mask, slots)
	}
	enc := EncConst
	if count > 0 {
		enc, dst = e.appendValues(dst)
	}
	dst[head] |= Version<<6 | byte(pres)<<4 | byte(enc)
	return dst
}

func isConst(vals []float64) bool {
	b := math.Float64bits(vals[0])
	for _, v := range vals[1:] {
		if math.Float64bits(v) != b {
			return false
		}
	}
	return true
}

// appendBlockStart appends byte 0 (without version, presence and
// encoding, which the caller ors in) and the point count if not common.
func appendBlockStart(dst []byte, n int) []byte {
	if n == CommonPoints {
		return append(dst, commonFlag)
	}
	return binary.AppendUvarint(append(dst, 0), uint64(n))
}

// loadOpen fills e.bits with the present values of o's slots [0, slots)
// and returns their presence mask; ok is false when Seal must take the
// slow path.
func (e *Encoder) loadOpen(o *Open, slots int) (mask [MaxOpenSlots / 64]uint64, ok bool) {
	if int(o.n) > slots {
		return mask, false
	}
	e.vals, e.haveVals = e.vals[:0], false
	mask = o.present
	cnt := o.presentCount()
	method := o.method
	var tail uint64
	hasTail := o.hasTail && int(o.tailSlot) < slots && !IsMissing(o.tail)
	if hasTail {
		switch o.mode {
		case modeNone:
			return mask, false // no kind chosen yet: a single value
		case modeFloat:
			tail = orderBits(math.Float64bits(o.tail))
		default:
			d := divisors[o.mode-1]
			if !fitsDivisor(o.tail, d) {
				return mask, false
			}
			x := math.Round(o.tail * d)
			method &= quotientMethods(x, o.mode-1, o.tail)
			tail = uint64(int64(x))
		}
		mask[o.tailSlot/64] |= 1 << (o.tailSlot % 64)
	}
	e.scaled = o.mode != modeFloat
	flip := uint64(0)
	if e.scaled {
		// The open block stores scaled integers as two's complement; the
		// sealed format orders them by flipping the sign bit.
		flip = signBit
		e.div = (o.mode - 1) | methodFlag(method)
	}
	e.bits = o.appendDomain(e.bits[:0], cnt, flip)
	if hasTail {
		e.bits = append(e.bits, tail^flip)
	}
	return mask, true
}

// methodFlag picks the fastest method of a set for the divisor byte.
func methodFlag(set uint8) byte {
	switch {
	case set&mulFlag != 0:
		return mulFlag
	case set&fmaFlag != 0:
		return fmaFlag
	}
	return 0
}

// appendMaskPresence writes the presence section of a block whose present
// slots are the set bits of mask, as runs or a bitmap, whichever is smaller.
func (e *Encoder) appendMaskPresence(dst []byte, mask [MaxOpenSlots / 64]uint64, slots int) (presence, []byte) {
	runs := e.runs[:0]
	cur, n := false, 0
	for i := range slots {
		if p := mask[i>>6]>>(i&63)&1 != 0; p != cur {
			runs = append(runs, n)
			cur, n = p, 0
		}
		n++
	}
	runs = append(runs, n)
	e.runs = runs
	size := uvarintLen(uint64(len(runs)))
	for _, r := range runs {
		size += uvarintLen(uint64(r))
	}
	if nb := (slots + 7) / 8; nb < size {
		for i := range nb {
			dst = append(dst, byte(mask[i/8]>>(8*(i%8))))
		}
		return presBitmap, dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(runs)))
	for _, r := range runs {
		dst = binary.AppendUvarint(dst, uint64(r))
	}
	return presRuns, dst
}

// blockStats are what the choice of an encoding looks at, gathered in one
// pass over e.bits.
type blockStats struct {
	lo, hi   uint64 // value range
	dlo, dhi int64  // delta range
	zeros    int    // zero deltas (repeated values)
}

func scan(b []uint64) blockStats {
	st := blockStats{lo: b[0], hi: b[0], dlo: math.MaxInt64, dhi: math.MinInt64}
	prev := b[0]
	for _, u := range b[1:] {
		st.lo, st.hi = min(st.lo, u), max(st.hi, u)
		d := int64(u - prev)
		st.dlo, st.dhi = min(st.dlo, d), max(st.dhi, d)
		if d == 0 {
			st.zeros++
		}
		prev = u
	}
	return st
}

// appendValues writes the value section of e.bits in the encoding the
// statistics point to, and returns that encoding.
//
// The frame-of-reference and delta packings are the general encodings,
// and their exact sizes cost one pass (truncated binary codes are k or
// k+1 bits: counting the long ones is enough). The dictionary can only
// win when the values are few and far apart, so it is considered when the
// packings spend more than 4 bits a value and a scan that stops at the
// 17th distinct value finds 16 or fewer. XOR can only win on values that
// repeat, that share trailing zero bits, or whose packing is wide (a rare
// jump widens every code of a packing, while XOR pays only where it is).
func (e *Encoder) appendValues(dst []byte) (Encoding, []byte) {
	b := e.bits
	st := scan(b)
	if st.lo == st.hi {
		// Fast path: a constant. A fraction takes 9 bytes as a float, and
		// fewer as a scaled integer with codes of zero bits.
		v := e.value(0)
		if e.scaled {
			if p, _ := forPacking(st.lo, st.hi, false); 1+p.headerSize(false) < compactFloatSize(v) {
				return EncScaledFOR, e.appendFOR(append(dst, e.div), p)
			}
		}
		return EncConst, appendCompactFloat(dst, v)
	}
	quant := !e.scaled
	pf, okF := forPacking(st.lo, st.hi, quant)
	pd, okD := deltaPacking(b[0], st.dlo, st.dhi, quant)
	if e.scaled && !okF && !okD {
		// Slow path: integers too far apart to pack; floats pack them.
		e.fillVals()
		e.scaled = false
		e.floatInts()
		return e.appendValues(dst)
	}
	sizeF, sizeD := e.packedSizes(pf, okF, pd, okD)
	best, size := EncScaledFOR, sizeF
	if sizeD >= 0 && (size < 0 || sizeD < size) {
		best, size = EncScaledDelta, sizeD
	}
	if !e.scaled {
		best += EncFloatFOR - EncScaledFOR
	}
	if (size < 0 || size > 4*len(b)+64) && fewDistinct(b) {
		e.fillVals()
		if ds := dictSize(e.vals); size < 0 || ds <= size {
			best, size = EncDict, ds
		}
	}
	if e.considerXOR(st, size) {
		e.fillVals()
		if xs := xorSize(e.vals); size < 0 || xs < size {
			best = EncXOR
		}
	}
	switch best {
	case EncDict:
		return best, e.appendDict(dst)
	case EncScaledFOR, EncScaledDelta:
		dst = append(dst, e.div)
		if best == EncScaledFOR {
			return best, e.appendFOR(dst, pf)
		}
		return best, e.appendDelta(dst, pd)
	case EncFloatFOR:
		return best, e.appendFOR(dst, pf)
	case EncFloatDelta:
		return best, e.appendDelta(dst, pd)
	}
	return best, e.appendXOR(dst)
}

// considerXOR reports whether XOR may be smaller than size bits. For
// floats a lower bound decides: XOR spends a bit on a repeated value and on
// any other at least 2 + the bits from the highest to the lowest set bit of
// the delta (an XOR is at least the difference of the ordered bits, and
// its lowest set bit is the same). Scaled integers XOR as floats, which
// no integer statistic bounds; there XOR is tried when values repeat or
// the packing is wide (a rare jump widens every code, while XOR pays only
// where it is).
func (e *Encoder) considerXOR(st blockStats, size int) bool {
	b := e.bits
	if size < 0 || 4*st.zeros >= len(b) {
		return true
	}
	if e.scaled {
		return size > 12*len(b)
	}
	low := 64 + st.zeros
	prev := b[0]
	for _, u := range b[1:] {
		if d := u - prev; d != 0 {
			if int64(d) < 0 {
				d = -d
			}
			low += 2 + bits.Len64(d) - bits.TrailingZeros64(d)
		}
		prev = u
	}
	return low < size
}

// packedSizes returns the sizes in bits of the FOR and delta sections
// (the divisor byte included), -1 for a packing that does not apply.
func (e *Encoder) packedSizes(pf packing, okF bool, pd packing, okD bool) (sizeF, sizeD int) {
	b := e.bits
	cf, cd := newTBCode(max(pf.m, 1)), newTBCode(max(pd.m, 1))
	ref, lo := pf.ref, uint64(pd.lo)
	longF, longD := 0, 0
	prev := b[0]
	if cf.u <= b[0]-ref {
		longF++
	}
	for _, u := range b[1:] {
		if cf.u <= u-ref {
			longF++
		}
		if cd.u <= u-prev-lo {
			longD++
		}
		prev = u
	}
	extra := 0
	if e.scaled {
		extra = 8
	}
	sizeF, sizeD = -1, -1
	if okF {
		sizeF = extra + 8*pf.headerSize(false) + len(b)*int(cf.k) + longF
	}
	if okD {
		sizeD = extra + 8*pd.headerSize(true) + (len(b)-1)*int(cd.k) + longD
	}
	return sizeF, sizeD
}

// fewDistinct reports whether b holds at most maxDict distinct values; it
// stops at the first one past that.
func fewDistinct(b []uint64) bool {
	var seen [maxDict]uint64
	n := 0
outer:
	for _, u := range b {
		for _, s := range seen[:n] {
			if s == u {
				continue outer
			}
		}
		if n == maxDict {
			return false
		}
		seen[n] = u
		n++
	}
	return true
}

// value returns the i-th present value.
func (e *Encoder) value(i int) float64 {
	if e.haveVals {
		return e.vals[i]
	}
	return e.toFloat(e.bits[i])
}

// fillVals makes e.vals the present values, converting them from e.bits
// when they came from an open block.
func (e *Encoder) fillVals() {
	if e.haveVals {
		return
	}
	vals := e.vals[:0]
	for _, u := range e.bits {
		vals = append(vals, e.toFloat(u))
	}
	e.vals, e.haveVals = vals, true
}

func (e *Encoder) toFloat(u uint64) float64 {
	if !e.scaled {
		return math.Float64frombits(unorderBits(u))
	}
	di := e.div & indexMask
	return quotient(float64(int64(u^signBit)), divisors[di], inverses[di], e.div&^indexMask)
}
