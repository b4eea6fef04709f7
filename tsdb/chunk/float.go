package chunk

import (
	"math"
)

// Float encodings pack arbitrary float64s through an order-preserving map
// of their bits to uint64: nearby values get nearby integers, so a random
// walk's step becomes a small integer delta whatever the exponent. This is
// within a bit of the entropy of full-precision noise, where XOR encodings
// lose 2-3 bits per value to their control bits.

// orderBits maps float bits to an unsigned order that follows the values.
func orderBits(b uint64) uint64 {
	if b&signBit == 0 {
		return b | signBit
	}
	return ^b
}

func unorderBits(u uint64) uint64 {
	if u&signBit != 0 {
		return u &^ signBit
	}
	return ^u
}

// floatInts fills e.bits with the ordered bits of e.vals.
func (e *Encoder) floatInts() {
	e.bits = e.bits[:0]
	for _, v := range e.vals {
		e.bits = append(e.bits, orderBits(math.Float64bits(v)))
	}
}

func decodeFloat(out []float64, delta bool, src []byte) error {
	p, err := unpackCodes(out, delta, true, src)
	if err != nil {
		return err
	}
	if !delta {
		for i, c := range out {
			out[i] = math.Float64frombits(unorderBits(p.ref + math.Float64bits(c)))
		}
		return nil
	}
	u, lo := p.ref, uint64(p.lo)
	out[0] = math.Float64frombits(unorderBits(u))
	for i := 1; i < len(out); i++ {
		u += lo + math.Float64bits(out[i])
		out[i] = math.Float64frombits(unorderBits(u))
	}
	return nil
}
