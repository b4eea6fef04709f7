package chunk

import (
	"encoding/binary"
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
	if o == OpMax {
		return max(cur, v)
	}
	return cur + v
}

// Open is the mutable block of the current period. Values are committed in
// slot order into a byte stream of zigzag deltas, each stored in the same
// number of bytes (the block's width, widened by re-encoding when a delta
// needs more), of scaled integers when every value so far is an integer
// over a small divisor (counter rates) and of order-preserving float bits
// otherwise. Fixed-width deltas decode with a load and a mask; varints cost
// a loop per byte, and full-precision gauges need 7-8 bytes either way.
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
	width    uint8 // bytes per delta
	method   uint8 // scaled modes: mulFlag, fmaFlag or 0 (divide); see scaled.go
}

const (
	modeNone  = 0
	modeFloat = 255
)

// Reset empties the block, keeping its buffer.
func (o *Open) Reset() {
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
	if o.mode == modeNone {
		o.mode = pickMode(v)
		o.method = mulFlag | fmaFlag
	} else if o.mode != modeFloat && !fitsDivisor(v, divisors[o.mode-1]) {
		// Slow path: the value needs another representation.
		var buf [MaxOpenSlots]float64
		vals := o.decodeCommitted(buf[:0])
		for len(vals) < int(slot) {
			vals = append(vals, Missing)
		}
		o.reencode(append(vals, v))
		return
	}
	o.n = slot + 1
	o.present[slot/64] |= 1 << (slot % 64)
	o.push(v)
}

// push appends v's delta to the stream.
func (o *Open) push(v float64) {
	u := o.toDomain(v)
	if o.mode != modeFloat {
		o.method &= quotientMethods(float64(int64(u)), divisors[o.mode-1], v)
	}
	d := u - o.prev
	z := uint64(int64(d)<<1) ^ uint64(int64(d)>>63)
	if w := uint8((bits.Len64(z) + 7) / 8); w > o.width {
		o.widen(w)
	}
	o.stream = appendFixed(o.stream, z, o.width)
	o.prev = u
}

// quotientMethods returns the fast methods that compute v from x/d exactly.
func quotientMethods(x, d, v float64) uint8 {
	var m uint8
	inv := 1 / d
	want := math.Float64bits(v)
	if math.Float64bits(quotient(x, d, inv, mulFlag)) == want {
		m |= mulFlag
	}
	if math.Float64bits(quotient(x, d, inv, fmaFlag)) == want {
		m |= fmaFlag
	}
	return m
}

// widen re-writes the stream with w bytes per delta.
func (o *Open) widen(w uint8) {
	old := o.width
	// With width 0 nothing was stored: every present slot but the one being
	// pushed had a zero delta.
	cnt := o.presentCount() - 1
	if old > 0 {
		cnt = len(o.stream) / int(old)
	}
	need := cnt * int(w)
	if need > cap(o.stream) {
		grown := make([]byte, len(o.stream), need+need/4+16)
		copy(grown, o.stream)
		o.stream = grown
	}
	buf := o.stream[:need]
	// Back to front: a value's new position is never before its old one.
	for i := cnt - 1; i >= 0; i-- {
		z := readFixed(buf, i, old)
		for j := 0; j < int(w); j++ {
			buf[i*int(w)+j] = byte(z >> (8 * j))
		}
	}
	o.stream, o.width = buf, w
}

func (o *Open) presentCount() int {
	return bits.OnesCount64(o.present[0]) + bits.OnesCount64(o.present[1])
}

// appendFixed appends the low w bytes of z.
func appendFixed(dst []byte, z uint64, w uint8) []byte {
	// Grow by a quarter rather than doubling: heads are many and long-lived,
	// and append's doubling would waste up to half of their memory.
	if len(dst)+int(w) > cap(dst) {
		grown := make([]byte, len(dst), len(dst)+len(dst)/4+16)
		copy(grown, dst)
		dst = grown
	}
	for i := uint8(0); i < w; i++ {
		dst = append(dst, byte(z>>(8*i)))
	}
	return dst
}

// readFixed returns the i-th w-byte value of src.
func readFixed(src []byte, i int, w uint8) uint64 {
	var z uint64
	off := i * int(w)
	for j := 0; j < int(w); j++ {
		z |= uint64(src[off+j]) << (8 * j)
	}
	return z
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
	if count < n {
		for i := range out {
			out[i] = Missing
		}
	}
	w := o.width
	mask := uint64(1)<<(8*uint(w)) - 1
	if w == 8 {
		mask = math.MaxUint64
	}
	// Deltas are read with 8-byte loads while they fit in the stream, and
	// byte by byte for the last few.
	fast := 0
	if w > 0 && len(o.stream) >= 8 {
		fast = (len(o.stream)-8)/int(w) + 1
	}
	if count == n {
		// Fast path: every slot present, in order.
		o.decodeRun(out, mask, fast)
		return dst
	}
	dec := openDecoder{o: o, mask: mask, fast: fast}
	for word, p := range o.present {
		for p != 0 {
			i := word*64 + bits.TrailingZeros64(p)
			p &= p - 1
			out[i] = dec.next()
		}
	}
	return dst
}

// decodeRun decodes len(out) consecutive values, with one loop per mode so
// that nothing but the arithmetic is left per value.
func (o *Open) decodeRun(out []float64, mask uint64, fast int) {
	var u uint64
	w := int(o.width)
	load := func(j int) uint64 {
		if j < fast {
			return binary.LittleEndian.Uint64(o.stream[j*w:]) & mask
		}
		return readFixed(o.stream, j, o.width)
	}
	if o.mode == modeFloat {
		for j := range out {
			z := load(j)
			u += uint64(int64(z>>1) ^ -int64(z&1))
			out[j] = math.Float64frombits(unorderBits(u))
		}
		return
	}
	d := divisors[o.mode-1]
	inv := 1 / d
	switch {
	case o.method&mulFlag != 0:
		for j := range out {
			z := load(j)
			u += uint64(int64(z>>1) ^ -int64(z&1))
			out[j] = float64(int64(u)) * inv
		}
	case o.method&fmaFlag != 0:
		for j := range out {
			z := load(j)
			u += uint64(int64(z>>1) ^ -int64(z&1))
			x := float64(int64(u))
			q := x * inv
			out[j] = math.FMA(math.FMA(-q, d, x), inv, q)
		}
	default:
		for j := range out {
			z := load(j)
			u += uint64(int64(z>>1) ^ -int64(z&1))
			out[j] = float64(int64(u)) / d
		}
	}
}

// appendDomain appends the first cnt committed values in the mode's
// integer domain, xored with flip, to dst.
func (o *Open) appendDomain(dst []uint64, cnt int, flip uint64) []uint64 {
	base := len(dst)
	dst = grow64(dst, cnt)
	out := dst[base:]
	w := int(o.width)
	if w == 0 {
		for j := range out {
			out[j] = flip
		}
		return dst
	}
	mask := uint64(1)<<(8*uint(w)) - 1
	if w == 8 {
		mask = math.MaxUint64
	}
	fast := 0
	if len(o.stream) >= 8 {
		fast = min(cnt, (len(o.stream)-8)/w+1)
	}
	var u uint64
	for j := range fast {
		z := binary.LittleEndian.Uint64(o.stream[j*w:]) & mask
		u += uint64(int64(z>>1) ^ -int64(z&1))
		out[j] = u ^ flip
	}
	for j := fast; j < cnt; j++ {
		z := readFixed(o.stream, j, o.width)
		u += uint64(int64(z>>1) ^ -int64(z&1))
		out[j] = u ^ flip
	}
	return dst
}

// openDecoder turns an open block's stream back into values, one by one.
type openDecoder struct {
	o    *Open
	mask uint64
	fast int // deltas before this index can be read with an 8-byte load
	j    int // next delta
	u    uint64
}

func (d *openDecoder) next() float64 {
	o := d.o
	var z uint64
	if d.j < d.fast {
		z = binary.LittleEndian.Uint64(o.stream[d.j*int(o.width):]) & d.mask
	} else {
		z = readFixed(o.stream, d.j, o.width)
	}
	d.j++
	d.u += uint64(int64(z>>1) ^ -int64(z&1))
	if o.mode == modeFloat {
		return math.Float64frombits(unorderBits(d.u))
	}
	div := divisors[o.mode-1]
	method := o.method
	if method == mulFlag|fmaFlag {
		method = mulFlag
	}
	return quotient(float64(int64(d.u)), div, 1/div, method)
}

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

// AppendTo appends a snapshot of the block for checkpoints.
func (o *Open) AppendTo(dst []byte) []byte {
	flags := byte(0)
	if o.hasTail {
		flags = 1
	}
	dst = append(dst, Version, o.mode, o.n, o.tailSlot, flags, o.width, o.method)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(o.tail))
	for _, p := range o.present {
		dst = binary.LittleEndian.AppendUint64(dst, p)
	}
	dst = binary.AppendUvarint(dst, uint64(len(o.stream)))
	return append(dst, o.stream...)
}

// DecodeOpen restores a snapshot written by AppendTo into o and returns the
// bytes after it.
func (o *Open) DecodeOpen(src []byte) ([]byte, error) {
	const fixed = 7 + 8 + 8*len(o.present)
	if len(src) < fixed || src[0] != Version {
		return nil, corruptf("bad open block snapshot")
	}
	*o = Open{mode: src[1], n: src[2], tailSlot: src[3], hasTail: src[4] == 1, width: src[5], method: src[6]}
	o.tail = math.Float64frombits(binary.LittleEndian.Uint64(src[7:]))
	for i := range o.present {
		o.present[i] = binary.LittleEndian.Uint64(src[15+8*i:])
	}
	src = src[fixed:]
	l, k := binary.Uvarint(src)
	if k <= 0 || uint64(len(src)-k) < l {
		return nil, corruptf("bad open block stream")
	}
	o.stream = append([]byte(nil), src[k:k+int(l)]...)
	src = src[k+int(l):]
	if err := o.validate(); err != nil {
		return nil, err
	}
	return src, nil
}

// validate checks a decoded snapshot so that later reads cannot fail.
func (o *Open) validate() error {
	if o.n > MaxOpenSlots || o.tailSlot >= MaxOpenSlots || (o.hasTail && o.tailSlot < o.n) {
		return corruptf("open block slots out of range")
	}
	if o.mode != modeNone && o.mode != modeFloat && int(o.mode) > len(divisors) {
		return corruptf("open block mode %d", o.mode)
	}
	count := 0
	for i, p := range o.present {
		if i*64 >= int(o.n) {
			if p != 0 {
				return corruptf("open block presence beyond committed slots")
			}
			continue
		}
		if keep := int(o.n) - i*64; keep < 64 && p>>keep != 0 {
			return corruptf("open block presence beyond committed slots")
		}
		count += bits.OnesCount64(p)
	}
	if count > 0 && o.mode == modeNone {
		return corruptf("open block values without a mode")
	}
	if o.width > 8 || len(o.stream) != count*int(o.width) {
		return corruptf("open block stream of %d bytes for %d values of width %d", len(o.stream), count, o.width)
	}
	if o.method&^(mulFlag|fmaFlag) != 0 {
		return corruptf("open block method %#x", o.method)
	}
	var u uint64
	for i := range count {
		z := readFixed(o.stream, i, o.width)
		u += uint64(int64(z>>1) ^ -int64(z&1))
	}
	o.prev = u
	return nil
}
