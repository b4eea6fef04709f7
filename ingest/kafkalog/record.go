package kafkalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Version is the record format version this package writes and reads
// (FORMAT.md). A reader refuses records of any other version.
const Version = 1

// Kind says what a record holds.
type Kind uint8

// Record kinds.
const (
	KindDatapoints Kind = 1 // a batch of datapoints, on the metrics topic
	KindSpans      Kind = 2 // an OTLP trace export request, on the spans topic
	KindExemplars  Kind = 3 // span-metrics exemplars, on the spans topic
)

// ErrCorrupt marks a record that cannot be decoded: a checksum mismatch,
// an unknown version or kind, or a malformed body.
var ErrCorrupt = errors.New("kafkalog: corrupt record")

// Sizes of the fixed parts of a record.
const (
	headerLen = 2 // version, kind
	countLen  = 4 // datapoint count (datapoints records)
	crcLen    = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pointsEncoder builds one datapoints record. The zero value is ready;
// reset starts a new record in the same buffer.
type pointsEncoder struct {
	buf []byte
	n   int // datapoints so far
}

func (e *pointsEncoder) reset() {
	e.buf = append(e.buf[:0], Version, byte(KindDatapoints), 0, 0, 0, 0)
	e.n = 0
}

// add appends one datapoint. s must be normalized.
func (e *pointsEncoder) add(s tags.Set, t int64, v float64) {
	if len(e.buf) == 0 {
		e.reset()
	}
	// The tag set's length first, so a reader can skip or bound it.
	size := 0
	for _, tg := range s {
		size += uvarintLen(uint64(len(tg.Key))) + len(tg.Key) + uvarintLen(uint64(len(tg.Value))) + len(tg.Value)
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(size))
	e.buf = s.AppendTo(e.buf)
	e.buf = binary.AppendVarint(e.buf, t)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))
	e.n++
}

// finish completes the record (count and checksum) and returns it; the
// encoder must be reset before the next add.
func (e *pointsEncoder) finish() []byte {
	binary.BigEndian.PutUint32(e.buf[headerLen:], uint32(e.n))
	e.buf = binary.BigEndian.AppendUint32(e.buf, crc32.Checksum(e.buf, castagnoli))
	return e.buf
}

// AppendDatapoints appends a datapoints record holding points (their Tags
// and T, V; Ref is not part of the format) to dst. Tags must be
// normalized.
func AppendDatapoints(dst []byte, points []tsdb.Datapoint) []byte {
	e := pointsEncoder{buf: dst[len(dst):]}
	e.reset()
	for _, p := range points {
		e.add(p.Tags, p.T, p.V)
	}
	rec := e.finish()
	return append(dst[:len(dst):len(dst)], rec...)
}

// AppendSpans appends a spans record of td to dst.
func AppendSpans(dst []byte, td ptrace.Traces) ([]byte, error) {
	var m ptrace.ProtoMarshaler
	body, err := m.MarshalTraces(td)
	if err != nil {
		return dst, fmt.Errorf("encode spans: %w", err)
	}
	start := len(dst)
	dst = append(dst, Version, byte(KindSpans))
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// check verifies rec's checksum and version and returns its kind and body
// (between the header and the checksum).
func check(rec []byte) (Kind, []byte, error) {
	if len(rec) < headerLen+crcLen {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(rec))
	}
	end := len(rec) - crcLen
	if got, want := crc32.Checksum(rec[:end], castagnoli), binary.BigEndian.Uint32(rec[end:]); got != want {
		return 0, nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	if rec[0] != Version {
		return 0, nil, fmt.Errorf("%w: version %d, this node reads %d", ErrCorrupt, rec[0], Version)
	}
	k := Kind(rec[1])
	if k != KindDatapoints && k != KindSpans && k != KindExemplars {
		return 0, nil, fmt.Errorf("%w: kind %d", ErrCorrupt, k)
	}
	return k, rec[headerLen:end], nil
}

// KindOf returns the kind of a record after checking its checksum and
// version.
func KindOf(rec []byte) (Kind, error) {
	k, _, err := check(rec)
	return k, err
}

// DecodeDatapoints appends the datapoints of a datapoints record to
// b.Points. The tags it decodes are normalized and share one string per
// record (no memory with rec), so rec may be reused afterwards. On error,
// b.Points is as it was.
func DecodeDatapoints(rec []byte, b *tsdb.Batch) error {
	k, body, err := check(rec)
	if err != nil {
		return err
	}
	if k != KindDatapoints {
		return fmt.Errorf("%w: kind %d, want datapoints", ErrCorrupt, k)
	}
	if len(body) < countLen {
		return fmt.Errorf("%w: no count", ErrCorrupt)
	}
	n := int(binary.BigEndian.Uint32(body))
	body = body[countLen:]
	// A datapoint takes at least 10 bytes: a bound on n before allocating.
	if n > len(body)/10 {
		return fmt.Errorf("%w: %d datapoints in %d bytes", ErrCorrupt, n, len(body))
	}
	// One string holds every tag of the record: one allocation, and the
	// tags point into it.
	all := string(body)
	b0 := len(b.Points)
	var tagsBuf []tags.Tag
	ranges := make([][2]int, 0, n) // per datapoint: its tags in tagsBuf
	off := 0
	for i := range n {
		size, w := binary.Uvarint(body[off:])
		if w <= 0 || w != uvarintLen(size) || size > uint64(len(body)-off-w) {
			b.Points = b.Points[:b0]
			return fmt.Errorf("%w: datapoint %d: bad tags length", ErrCorrupt, i)
		}
		off += w
		start := len(tagsBuf)
		tagsBuf, err = decodeTags(tagsBuf, all[off:off+int(size)])
		if err != nil {
			b.Points = b.Points[:b0]
			return fmt.Errorf("%w: datapoint %d: %w", ErrCorrupt, i, err)
		}
		off += int(size)
		t, w := binary.Varint(body[off:])
		if w <= 0 || w != uvarintLen(zigzag(t)) || len(body)-off-w < 8 {
			b.Points = b.Points[:b0]
			return fmt.Errorf("%w: datapoint %d: bad timestamp or value", ErrCorrupt, i)
		}
		off += w
		v := math.Float64frombits(binary.LittleEndian.Uint64(body[off:]))
		off += 8
		// The tags are set below, once tagsBuf stops moving.
		b.Points = append(b.Points, tsdb.Datapoint{T: t, V: v})
		ranges = append(ranges, [2]int{start, len(tagsBuf)})
	}
	if off != len(body) {
		b.Points = b.Points[:b0]
		return fmt.Errorf("%w: %d bytes after the last datapoint", ErrCorrupt, len(body)-off)
	}
	for i, r := range ranges {
		b.Points[b0+i].Tags = tags.Set(tagsBuf[r[0]:r[1]:r[1]])
	}
	return nil
}

// decodeTags appends the tags of one canonical encoding held in s to dst,
// checking that keys are sorted and unique (a normalized set).
func decodeTags(dst []tags.Tag, s string) ([]tags.Tag, error) {
	start := len(dst)
	for len(s) > 0 {
		var k, v string
		var ok bool
		if k, s, ok = cutString(s); !ok {
			return dst, errors.New("bad tag key")
		}
		if v, s, ok = cutString(s); !ok {
			return dst, errors.New("bad tag value")
		}
		if len(dst) > start && dst[len(dst)-1].Key >= k {
			return dst, fmt.Errorf("tag %q out of order", k)
		}
		dst = append(dst, tags.Tag{Key: k, Value: v})
	}
	return dst, nil
}

// cutString splits a uvarint-length-prefixed string off the front of s;
// the length must be minimally encoded.
func cutString(s string) (str, rest string, ok bool) {
	var n uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if n > uint64(len(s)-i-1) || i+1 != uvarintLen(n) {
				return "", "", false
			}
			return s[i+1 : i+1+int(n)], s[i+1+int(n):], true
		}
		shift += 7
	}
	return "", "", false
}

// DecodeSpans returns the spans of a spans record.
func DecodeSpans(rec []byte) (ptrace.Traces, error) {
	k, body, err := check(rec)
	if err != nil {
		return ptrace.Traces{}, err
	}
	if k != KindSpans {
		return ptrace.Traces{}, fmt.Errorf("%w: kind %d, want spans", ErrCorrupt, k)
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(body)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("%w: spans: %w", ErrCorrupt, err)
	}
	return td, nil
}

// zigzag maps a signed varint's value to the unsigned one it is written as.
func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

// uvarintLen is the length of x's (minimal) uvarint: the decoders refuse
// longer encodings, so a record has exactly one encoding.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
