package chunk

import (
	"encoding/binary"
	"math"
)

// Open block snapshots (FORMAT.md). Version 2 (openVersion) holds the
// stream as it is in memory; version 1 (openVersionBytes: byte-wide
// deltas), written before the stream kept its first value apart and packed
// deltas by bits, is still read, so that a checkpoint taken by an older
// binary restores.
const (
	openVersionBytes = 1
	openVersion      = 2
	openFixed        = 7 + 8 + 8*MaxOpenSlots/64 // bytes before the stream length
)

// AppendTo appends a snapshot of the block for checkpoints.
func (o *Open) AppendTo(dst []byte) []byte {
	flags := byte(0)
	if o.hasTail {
		flags = 1
	}
	dst = append(dst, openVersion, o.mode, o.n, o.tailSlot, flags, o.width, o.method)
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
	if len(src) < openFixed || (src[0] != openVersion && src[0] != openVersionBytes) {
		return nil, corruptf("bad open block snapshot")
	}
	version := src[0]
	*o = Open{mode: src[1], n: src[2], tailSlot: src[3], hasTail: src[4] == 1, width: src[5], method: src[6]}
	o.tail = math.Float64frombits(binary.LittleEndian.Uint64(src[7:]))
	for i := range o.present {
		o.present[i] = binary.LittleEndian.Uint64(src[15+8*i:])
	}
	src = src[openFixed:]
	l, k := binary.Uvarint(src)
	if k <= 0 || uint64(len(src)-k) < l {
		return nil, corruptf("bad open block stream")
	}
	stream := src[k : k+int(l)]
	src = src[k+int(l):]
	if err := o.validateHeader(); err != nil {
		return nil, err
	}
	if version == openVersionBytes {
		return src, o.fromVersion1(stream)
	}
	o.stream = append([]byte(nil), stream...)
	return src, o.validateStream()
}

// validateHeader checks the fields of a decoded snapshot other than the
// stream.
func (o *Open) validateHeader() error {
	if o.n > MaxOpenSlots || o.tailSlot >= MaxOpenSlots || (o.hasTail && o.tailSlot < o.n) {
		return corruptf("open block slots out of range")
	}
	if o.mode != modeNone && o.mode != modeFloat && int(o.mode) > len(divisors) {
		return corruptf("open block mode %d", o.mode)
	}
	for i, p := range o.present {
		if keep := int(o.n) - i*64; keep <= 0 && p != 0 || keep > 0 && keep < 64 && p>>keep != 0 {
			return corruptf("open block presence beyond committed slots")
		}
	}
	if o.presentCount() > 0 && o.mode == modeNone {
		return corruptf("open block values without a mode")
	}
	if o.width > 64 {
		return corruptf("open block width %d", o.width)
	}
	if o.method&^(mulFlag|fmaFlag) != 0 {
		return corruptf("open block method %#x", o.method)
	}
	return nil
}

// validateStream checks a version 2 stream against the header, so that
// later reads cannot fail, and restores prev.
func (o *Open) validateStream() error {
	count := o.presentCount()
	want := 0
	if count > 0 {
		want = streamBase + ((count-1)*int(o.width)+7)/8
	}
	if len(o.stream) != want {
		return corruptf("open block stream of %d bytes for %d values of %d bits", len(o.stream), count, o.width)
	}
	if count == 0 {
		return nil
	}
	if used := uint((count - 1) * int(o.width) % 8); used != 0 && o.stream[len(o.stream)-1]>>used != 0 {
		return corruptf("open block stream padding not zero")
	}
	u := o.base()
	r := newDeltaReader(o.stream, o.width)
	for k := range count - 1 {
		z := r.at(k)
		u += uint64(int64(z>>1) ^ -int64(z&1))
	}
	o.prev = u
	return nil
}

// fromVersion1 rebuilds the stream from a version 1 one: zigzag deltas
// from zero, width bytes each.
func (o *Open) fromVersion1(stream []byte) error {
	count := o.presentCount()
	w := int(o.width)
	if w > 8 || len(stream) != count*w {
		return corruptf("open block stream of %d bytes for %d values of width %d", len(stream), count, w)
	}
	o.width = 0
	var u uint64
	for i := range count {
		var z uint64
		for j := range w {
			z |= uint64(stream[i*w+j]) << (8 * j)
		}
		u += uint64(int64(z>>1) ^ -int64(z&1))
		o.pushDomainAt(i, u)
	}
	return nil
}
