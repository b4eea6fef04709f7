package chunk

import "math"

// At returns the value of one slot of the block, Missing when it has none
// (or slot is out of range). It is the point read of the live evaluator,
// which asks every step for the step that just closed: the tail and the
// newest committed slot cost O(1) (the latter is the encoder's running
// value, prev); an older slot decodes the stream up to it.
func (o *Open) At(slot int) float64 {
	if slot < 0 || slot >= MaxOpenSlots {
		return Missing
	}
	s := uint8(slot)
	switch {
	case o.hasTail && s == o.tailSlot:
		// Fast path: the current step.
		return o.tail
	case s >= o.n || o.present[s/64]&(1<<(s%64)) == 0:
		return Missing
	case s == o.n-1:
		// Fast path: the newest committed value is the last one pushed.
		return o.fromDomain(o.prev)
	}
	// Slow path: an older committed slot.
	var buf [MaxOpenSlots]float64
	return o.decodeCommitted(buf[:0])[slot]
}

// fromDomain is the inverse of toDomain, computed as the decoders do.
func (o *Open) fromDomain(u uint64) float64 {
	if o.mode == modeFloat {
		return math.Float64frombits(unorderBits(u))
	}
	d := divisors[o.mode-1]
	method := o.method
	if method == mulFlag|fmaFlag {
		method = mulFlag
	}
	return quotient(float64(int64(u)), d, 1/d, method)
}
