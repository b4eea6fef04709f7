package chunk

import (
	"math"
	"math/bits"
)

// MaxOpenSlots is the largest block an Open block can hold.
const MaxOpenSlots = 128

// Op says how a write combines with a slot's current value. An empty slot
// takes the written value whatever the op.
type Op uint8

// Write operations, one per normalization (see tsdb/norm).
const (
	OpSet Op = iota // replace (rates: each step is emitted once, complete)
	OpMax           // keep the larger; NaN ignored (gauges)
	OpAdd           // add; NaN ignored (sums)
	OpMin           // keep the smaller; NaN ignored (min gauges)
)

// Apply combines cur (possibly Missing) with v.
func (o Op) Apply(cur, v float64) float64 {
	if IsMissing(cur) || o == OpSet {
		return v
	}
	if v != v { // NaN: no data, keep what is there
		return cur
	}
	if cur != cur {
		return v
	}
	switch o {
	case OpMax:
		return max(cur, v)
	case OpMin:
		return min(cur, v)
	}
	return cur + v
}

// Open is the mutable block of the current period. Values are committed in
// slot order into a stream (openstream.go): the first value, then the
// zigzag delta from the previous value in the same number of bits for
// each (the block's width, widened by repacking when a delta needs more),
// of scaled integers when every value so far is an integer over a small
// divisor (counter rates) and of order-preserving float bits otherwise.
// Fixed-width deltas decode with a load, a shift and a mask; varints cost a
// loop per byte. A block holds about what its values need: no bits for a
// constant after the first value, 9 or so for a counter's rate, 49 for a
// full-precision random walk, and its buffer grows by a quarter at a time.
//
// The newest slot stays raw in tail, so repeated updates of the current step
// (a gauge's max, a sum) cost no encoding, and writes arrive in slot order
// in practice; writing an earlier, committed slot rewrites the stream, which
// is O(slots) and rare.
//
// Open is not safe for concurrent use; the head guards it with its shard lock.
// The zero value is an empty block.
type Open struct {
	stream   []byte
	present  [MaxOpenSlots / 64]uint64
	prev     uint64 // last committed value in the mode's domain
	tail     float64
	n        uint8 // slots [0, n) are committed
	tailSlot uint8
	hasTail  bool
	mode     uint8 // modeNone, a divisor index + 1, or modeFloat
	width    uint8 // bits per delta, 0..64
	method   uint8 // scaled modes: mulFlag, fmaFlag or 0 (divide); see scaled.go
}

const (
	modeNone  = 0
	modeFloat = 255
)

// Reset empties the block, keeping its buffer: a series that keeps
// writing refills it in the next period without allocating.
func (o *Open) Reset() {
	clear(o.stream) // the buffer past the stream stays zero (openstream.go)
	*o = Open{stream: o.stream[:0]}
}

// Empty reports whether no slot holds a value.
func (o *Open) Empty() bool { return !o.hasTail && o.present == [2]uint64{} }

// Write combines v into slot with op. NaNs are stored as Missing.
func (o *Open) Write(slot int, v float64, op Op) {
	if slot < 0 || slot >= MaxOpenSlots {
		panic("BUG: chunk.Open slot out of range")
	}
	if v != v {
		v = Missing
	}
	s := uint8(slot)
	switch {
	case o.hasTail && s == o.tailSlot:
		// Fast path: the current step.
		o.tail = op.Apply(o.tail, v)
	case !o.hasTail && s >= o.n:
		o.tail, o.tailSlot, o.hasTail = op.Apply(Missing, v), s, true
	case o.hasTail && s > o.tailSlot:
		// Fast path: the next step; commit the previous one.
		o.commit(o.tailSlot, o.tail)
		o.tail, o.tailSlot = op.Apply(Missing, v), s
	case s >= o.n:
		// An empty slot before the tail: commit up to it.
		o.commit(s, op.Apply(Missing, v))
	default:
		// Slow path: a committed slot.
		o.rewrite(slot, v, op)
	}
}

// commit appends slot's value to the stream; slots between n and slot stay
// empty.
func (o *Open) commit(slot uint8, v float64) {
	if IsMissing(v) {
		o.n = slot + 1
		return
	}
	var u uint64
	switch o.mode {
	case modeNone:
		o.mode = pickMode(v)
		o.method = mulFlag | fmaFlag
		u = o.toDomain(v)
		if o.mode != modeFloat {
			o.method &= quotientMethods(float64(int64(u)), o.mode-1, v)
		}
	case modeFloat:
		u = orderBits(math.Float64bits(v))
	default:
		// Fast path: the kind of the values so far.
		di := o.mode - 1
		d := divisors[di]
		r := math.Round(v * d)
		// As fitsDivisor: the integer, not r, so that -0 does not fit.
		if !(r <= maxExactInt && r >= -maxExactInt) || math.Float64bits(float64(int64(r))/d) != math.Float64bits(v) {
			// Slow path: the value needs another representation.
			var buf [MaxOpenSlots]float64
			vals := o.decodeCommitted(buf[:0])
			for len(vals) < int(slot) {
				vals = append(vals, Missing)
			}
			o.reencode(append(vals, v))
			return
		}
		o.method &= quotientMethods(r, di, v)
		u = uint64(int64(r))
	}
	o.n = slot + 1
	o.present[slot/64] |= 1 << (slot % 64)
	o.pushDomain(u)
}

// quotientMethods returns the fast methods that compute v from x/d exactly.
func quotientMethods(x float64, di uint8, v float64) uint8 {
	var m uint8
	d, inv := divisors[di], inverses[di]
	want := math.Float64bits(v)
	if math.Float64bits(quotient(x, d, inv, mulFlag)) == want {
		m |= mulFlag
	}
	if math.Float64bits(quotient(x, d, inv, fmaFlag)) == want {
		m |= fmaFlag
	}
	return m
}

func (o *Open) presentCount() int {
	return bits.OnesCount64(o.present[0]) + bits.OnesCount64(o.present[1])
}

// Values appends the block's slots [0, slots) to dst, Missing where empty.
func (o *Open) Values(dst []float64, slots int) []float64 {
	base := len(dst)
	dst = o.decodeCommitted(dst)
	if o.hasTail && int(o.tailSlot) < slots {
		for len(dst)-base < int(o.tailSlot) {
			dst = append(dst, Missing)
		}
		dst = append(dst, o.tail)
	}
	for len(dst)-base < slots {
		dst = append(dst, Missing)
	}
	return dst[:base+slots]
}

// Dense reports whether every slot before slots holds a value.
func (o *Open) Dense(slots int) bool {
	filled := int(o.n)
	if o.hasTail && o.tailSlot == o.n {
		filled++
	}
	return filled >= slots && o.presentCount() == int(o.n)
}

// CopyTo makes dst a copy of o whose stream lives in buf (appended to it),
// and returns the extended buf. Readers copy an open block under their lock
// and decode the copy after releasing it.
func (o *Open) CopyTo(dst *Open, buf []byte) []byte {
	start := len(buf)
	buf = append(buf, o.stream...)
	*dst = *o
	dst.stream = buf[start:len(buf):len(buf)]
	return buf
}

// Bytes returns the memory the block holds beyond its struct.
func (o *Open) Bytes() int { return cap(o.stream) }

// Load makes o the open block of a sealed block's values, reusing o's
// buffer: the store reopens the newest sealed block of a series that gets
// more writes for its period (a block sealed as idle during a backfill, or
// by a sender that ran ahead), so that those writes cost an open block's
// write each instead of a decode and re-encode of the sealed block each.
// The newest value stays raw, as the current step does. Load allocates
// nothing once o's buffer has grown. It returns an error wrapping
// ErrCorrupt for a block that does not decode or is longer than
// MaxOpenSlots.
func (o *Open) Load(block []byte) error {
	h, err := ReadHeader(block)
	if err != nil {
		return err
	}
	if h.Points > MaxOpenSlots {
		return corruptf("block of %d slots, an open block holds %d", h.Points, MaxOpenSlots)
	}
	var buf [MaxOpenSlots]float64
	vals, err := Decode(buf[:0], block)
	if err != nil {
		return err
	}
	last := len(vals) - 1
	for last >= 0 && IsMissing(vals[last]) {
		last--
	}
	o.Reset()
	if last < 0 {
		return nil
	}
	o.reencode(vals[:last])
	o.tail, o.tailSlot, o.hasTail = vals[last], uint8(last), true
	return nil
}

// rewrite applies a write to a committed slot by rebuilding the stream.
func (o *Open) rewrite(slot int, v float64, op Op) {
	var buf [MaxOpenSlots]float64
	vals := o.decodeCommitted(buf[:0])
	vals[slot] = op.Apply(vals[slot], v)
	o.reencode(vals)
}

// reencode rebuilds the stream from the committed values, choosing the mode
// that represents all of them.
func (o *Open) reencode(vals []float64) {
	clear(o.stream)
	stream := o.stream[:0]
	*o = Open{stream: stream, tail: o.tail, tailSlot: o.tailSlot, hasTail: o.hasTail}
	mode := uint8(modeFloat)
	for di := range divisors {
		ok := true
		for _, v := range vals {
			if !IsMissing(v) && !fitsDivisor(v, divisors[di]) {
				ok = false
				break
			}
		}
		if ok {
			mode = uint8(di) + 1
			break
		}
	}
	for i, v := range vals {
		o.n = uint8(i) + 1
		if IsMissing(v) {
			continue
		}
		o.present[i/64] |= 1 << (i % 64)
		if o.mode == modeNone {
			o.mode, o.method = mode, mulFlag|fmaFlag
		}
		o.push(v)
	}
}

// pickMode returns the mode for a first value: the smallest divisor that
// represents it, or float.
func pickMode(v float64) uint8 {
	for di, d := range divisors {
		if fitsDivisor(v, d) {
			return uint8(di) + 1
		}
	}
	return modeFloat
}

// fitsDivisor reports whether v is exactly an integer divided by d.
func fitsDivisor(v, d float64) bool {
	r := math.Round(v * d)
	if !(r <= maxExactInt && r >= -maxExactInt) {
		return false
	}
	return math.Float64bits(float64(int64(r))/d) == math.Float64bits(v)
}

func (o *Open) toDomain(v float64) uint64 {
	if o.mode == modeFloat {
		return orderBits(math.Float64bits(v))
	}
	return uint64(int64(math.Round(v * divisors[o.mode-1])))
}
