package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Encoding identifies how the present values of a block are stored.
type Encoding uint8

// Value encodings. The numbers are part of the on-disk format (FORMAT.md).
const (
	EncConst       Encoding = 0 // one value repeated
	EncDict        Encoding = 1 // few distinct values, truncated-binary indexes
	EncScaledFOR   Encoding = 2 // value*d integral: frame of reference
	EncScaledDelta Encoding = 3 // value*d integral: deltas, frame of reference
	EncFloatFOR    Encoding = 4 // order-preserving bits: frame of reference
	EncFloatDelta  Encoding = 5 // order-preserving bits: deltas
	EncXOR         Encoding = 6 // Gorilla XOR, for anything
	numEncodings            = 7
)

var encodingNames = [numEncodings]string{"const", "dict", "scaled-for", "scaled-delta", "float-for", "float-delta", "xor"}

// String returns the encoding's name.
func (e Encoding) String() string {
	if e < numEncodings {
		return encodingNames[e]
	}
	return fmt.Sprintf("Encoding(%d)", e)
}

// Presence says which slots of a block hold a value.
type presence uint8

const (
	presAll    presence = 0 // every slot
	presRuns   presence = 1 // alternating absent/present run lengths
	presBitmap presence = 2 // one bit per slot
	presNone   presence = 3 // no slot (then no value section follows)
)

// Version is the block format version stored in the top bits of byte 0.
const Version = 1

// CommonPoints is the block length a header can state without a count byte:
// the store's default (120 steps, two hours at 60 s).
const CommonPoints = 120

// Byte 0: version (2 bits) | presence (2 bits) | common-length flag | encoding (3 bits).
const (
	commonFlag   = 1 << 3
	encodingMask = 7
)

// MaxPoints bounds the slots of one block, so that decoding hostile input
// allocates a bounded amount.
const MaxPoints = 4096

// missingBits is the bit pattern of a missing value: the NaN that math.NaN
// returns. Other NaN payloads are ordinary values and round-trip bit-exactly.
const missingBits = 0x7FF8000000000001

// Missing is the value of an empty slot.
var Missing = math.Float64frombits(missingBits)

// IsMissing reports whether v is the missing-value NaN.
func IsMissing(v float64) bool { return math.Float64bits(v) == missingBits }

// ErrCorrupt marks a block that cannot be decoded.
var ErrCorrupt = errors.New("chunk: corrupt block")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// Header describes an encoded block.
type Header struct {
	Version  uint8
	Encoding Encoding
	Points   int // slots, present or not
	Present  int // slots with a value
}

// ReadHeader parses the header of a block.
func ReadHeader(src []byte) (Header, error) {
	h, _, err := readHeader(src)
	return h, err
}

// Decode appends the values of the block in src to dst, Missing in empty
// slots, and returns the extended slice. It never panics on bad input.
func Decode(dst []float64, src []byte) ([]float64, error) {
	dst, _, err := DecodeHeader(dst, src)
	return dst, err
}

// DecodeHeader is Decode that also returns the block's header; a reader
// that sees Present == Points knows there is no Missing to skip.
func DecodeHeader(dst []float64, src []byte) ([]float64, Header, error) {
	h, rest, err := readHeader(src)
	if err != nil {
		return dst, h, err
	}
	dst, err = decodeBody(dst, h, rest)
	return dst, h, err
}

func decodeBody(dst []float64, h Header, rest sections) ([]float64, error) {
	base := len(dst)
	dst = grow(dst, h.Points)
	out := dst[base:]
	if h.Present == 0 {
		for i := range out {
			out[i] = Missing
		}
		return dst, nil
	}
	// Decode present values into the tail of out, then spread them over
	// their slots back to front, which needs no scratch buffer.
	vals := out[h.Points-h.Present:]
	if err := decodeValues(vals, h.Encoding, rest.values); err != nil {
		return dst[:base], err
	}
	if h.Present < h.Points {
		spread(out, h.Present, rest)
	}
	return dst, nil
}

func grow(dst []float64, n int) []float64 {
	if cap(dst)-len(dst) >= n {
		return dst[:len(dst)+n]
	}
	out := make([]float64, len(dst)+n, len(dst)+n+n/4)
	copy(out, dst)
	return out
}

// sections are the parts of a block after the header.
type sections struct {
	pres     presence
	presData []byte // runs or bitmap
	values   []byte
}

func readHeader(src []byte) (Header, sections, error) {
	var h Header
	var s sections
	if len(src) < 1 {
		return h, s, corruptf("empty block")
	}
	h.Version = src[0] >> 6
	s.pres = presence(src[0] >> 4 & 3)
	h.Encoding = Encoding(src[0] & encodingMask)
	if h.Version != Version {
		return h, s, corruptf("block version %d, want %d", h.Version, Version)
	}
	if h.Encoding >= numEncodings {
		return h, s, corruptf("unknown encoding %d", h.Encoding)
	}
	rest := src[1:]
	if src[0]&commonFlag != 0 {
		h.Points = CommonPoints
	} else {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n == 0 || n > MaxPoints {
			return h, s, corruptf("bad point count")
		}
		h.Points, rest = int(n), rest[k:]
	}
	switch s.pres {
	case presAll:
		h.Present = h.Points
	case presNone:
		h.Present = 0
	case presBitmap:
		nb := (h.Points + 7) / 8
		if len(rest) < nb {
			return h, s, corruptf("short presence bitmap")
		}
		s.presData, rest = rest[:nb], rest[nb:]
		for i := 0; i < h.Points; i++ {
			h.Present += int(s.presData[i/8] >> (i % 8) & 1)
		}
	case presRuns:
		present, used, err := scanRuns(rest, h.Points)
		if err != nil {
			return h, s, err
		}
		h.Present = present
		s.presData, rest = rest[:used], rest[used:]
	}
	s.values = rest
	return h, s, nil
}

// choosePresence picks the smaller of run lengths and a bitmap.
func (e *Encoder) choosePresence(vals []float64) presence {
	switch len(e.vals) {
	case len(vals):
		return presAll
	case 0:
		return presNone
	}
	if (len(vals)+7)/8 < runsSize(vals) {
		return presBitmap
	}
	return presRuns
}

func appendPresence(dst []byte, vals []float64, p presence) []byte {
	switch p {
	case presRuns:
		return appendRuns(dst, vals)
	case presBitmap:
		start := len(dst)
		dst = append(dst, make([]byte, (len(vals)+7)/8)...)
		for i, v := range vals {
			if !IsMissing(v) {
				dst[start+i/8] |= 1 << (i % 8)
			}
		}
	}
	return dst
}

// forRuns calls fn with each run length, starting with a (possibly empty)
// run of missing slots and alternating.
func forRuns(vals []float64, fn func(n int)) {
	missing, n := true, 0
	for _, v := range vals {
		if IsMissing(v) != missing {
			fn(n)
			missing, n = !missing, 0
		}
		n++
	}
	fn(n)
}

func runsSize(vals []float64) int {
	cnt, size := 0, 0
	forRuns(vals, func(n int) { cnt++; size += uvarintLen(uint64(n)) })
	return size + uvarintLen(uint64(cnt))
}

// appendRuns writes the run count and then the run lengths.
func appendRuns(dst []byte, vals []float64) []byte {
	cnt := 0
	forRuns(vals, func(int) { cnt++ })
	dst = binary.AppendUvarint(dst, uint64(cnt))
	forRuns(vals, func(n int) { dst = binary.AppendUvarint(dst, uint64(n)) })
	return dst
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// scanRuns validates a run section and returns the present count and the
// section's length in bytes.
func scanRuns(src []byte, points int) (present, used int, err error) {
	cnt, k := binary.Uvarint(src)
	if k <= 0 || cnt == 0 || cnt > 2*MaxPoints {
		return 0, 0, corruptf("bad run count")
	}
	used, total := k, 0
	for i := 0; i < int(cnt); i++ {
		r, k := binary.Uvarint(src[used:])
		if k <= 0 || r > MaxPoints {
			return 0, 0, corruptf("bad run length")
		}
		used += k
		total += int(r)
		if i%2 == 1 {
			present += int(r)
		}
	}
	if total != points {
		return 0, 0, corruptf("runs cover %d of %d points", total, points)
	}
	return present, used, nil
}

// spread moves the present values, packed at the tail of out, into their
// slots and fills the others with Missing. Going front to back is safe: the
// j-th present value's slot is never after its packed position, and a
// missing slot always lies before the packed position of the next value.
func spread(out []float64, present int, s sections) {
	src := len(out) - present
	switch s.pres {
	case presBitmap:
		for i := range out {
			if s.presData[i/8]>>(i%8)&1 == 1 {
				out[i] = out[src]
				src++
			} else {
				out[i] = Missing
			}
		}
	case presRuns:
		// A run at a time: a fill or a move (copy handles the overlap of
		// a present run with its packed values), not a test per slot.
		cnt, off := binary.Uvarint(s.presData)
		i := 0
		for r := 0; r < int(cnt); r++ {
			n, k := binary.Uvarint(s.presData[off:])
			off += k
			run := out[i : i+int(n)]
			if r%2 == 1 {
				copy(run, out[src:src+int(n)])
				src += int(n)
			} else {
				for j := range run {
					run[j] = Missing
				}
			}
			i += int(n)
		}
	}
}

func decodeValues(out []float64, enc Encoding, src []byte) error {
	switch enc {
	case EncConst:
		v, _, err := readCompactFloat(src)
		if err != nil {
			return err
		}
		for i := range out {
			out[i] = v
		}
		return nil
	case EncDict:
		return decodeDict(out, src)
	case EncScaledFOR, EncScaledDelta:
		return decodeScaled(out, enc == EncScaledDelta, src)
	case EncFloatFOR, EncFloatDelta:
		return decodeFloat(out, enc == EncFloatDelta, src)
	}
	return decodeXOR(out, src)
}

// appendCompactFloat writes an integral value in (-2^53, 2^53) as a tag byte 0
// and a zigzag varint, anything else as tag 1 and its 8 bytes.
func appendCompactFloat(dst []byte, v float64) []byte {
	if i := int64(v); float64(i) == v && i > -1<<53 && i < 1<<53 && !(i == 0 && math.Signbit(v)) {
		dst = append(dst, 0)
		return binary.AppendVarint(dst, i)
	}
	dst = append(dst, 1)
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

func compactFloatSize(v float64) int {
	if i := int64(v); float64(i) == v && i > -1<<53 && i < 1<<53 && !(i == 0 && math.Signbit(v)) {
		return 1 + varintLen(i)
	}
	return 9
}

func readCompactFloat(src []byte) (float64, int, error) {
	if len(src) == 0 {
		return 0, 0, corruptf("missing value")
	}
	switch src[0] {
	case 0:
		i, k := binary.Varint(src[1:])
		if k <= 0 {
			return 0, 0, corruptf("bad integral value")
		}
		return float64(i), 1 + k, nil
	case 1:
		if len(src) < 9 {
			return 0, 0, corruptf("short float value")
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(src[1:])), 9, nil
	}
	return 0, 0, corruptf("bad value tag %d", src[0])
}
