package chunk

import (
	"encoding/binary"
	"math"
)

// The dictionary encoding stores up to maxDict distinct values once and each
// slot as a truncated-binary index: status flags, enums and step functions
// cost a bit or two per value.

const maxDict = 16

// distinct collects the distinct bit patterns of vals, in first-seen order,
// into dict; it returns false when there are more than maxDict.
func distinct(vals []float64, dict *[maxDict]uint64) (int, bool) {
	n := 0
outer:
	for _, v := range vals {
		b := math.Float64bits(v)
		for _, d := range dict[:n] {
			if d == b {
				continue outer
			}
		}
		if n == maxDict {
			return 0, false
		}
		dict[n] = b
		n++
	}
	return n, true
}

func index(dict []uint64, b uint64) uint64 {
	for i, d := range dict {
		if d == b {
			return uint64(i)
		}
	}
	panic("BUG: value missing from dictionary")
}

func dictSize(vals []float64) int {
	var dict [maxDict]uint64
	n, ok := distinct(vals, &dict)
	if !ok {
		return -1
	}
	size := 8 * uvarintLen(uint64(n))
	for _, b := range dict[:n] {
		size += 8 * compactFloatSize(math.Float64frombits(b))
	}
	c := newTBCode(uint64(n))
	for _, v := range vals {
		size += int(c.size(index(dict[:n], math.Float64bits(v))))
	}
	return size
}

func (e *Encoder) appendDict(dst []byte) []byte {
	var dict [maxDict]uint64
	n, _ := distinct(e.vals, &dict)
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, b := range dict[:n] {
		dst = appendCompactFloat(dst, math.Float64frombits(b))
	}
	e.codes = e.codes[:0]
	for _, v := range e.vals {
		e.codes = append(e.codes, index(dict[:n], math.Float64bits(v)))
	}
	return e.packCodes(dst, newTBCode(uint64(n)))
}

func decodeDict(out []float64, src []byte) error {
	n, k := binary.Uvarint(src)
	if k <= 0 || n == 0 || n > maxDict {
		return corruptf("bad dictionary size")
	}
	src = src[k:]
	var dict [maxDict]float64
	for i := range dict[:n] {
		v, k, err := readCompactFloat(src)
		if err != nil {
			return err
		}
		dict[i] = v
		src = src[k:]
	}
	if used := newTBCode(n).unpack(out, src); used < 0 {
		return corruptf("dictionary section too short")
	}
	for i, v := range out {
		ix := math.Float64bits(v)
		if ix >= n {
			return corruptf("dictionary index %d of %d", ix, n)
		}
		out[i] = dict[ix]
	}
	return nil
}
