package spanstore

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/tracing"
)

// Key kinds: the first byte of every key (FORMAT.md).
const (
	kindMeta     = 'm' // m → format version
	kindBlock    = 'b' // b seq → block
	kindTrace    = 't' // t traceID seq → the trace's spans in block seq
	kindSearch   = 's' // s hour service 0x00 minStart traceID seq → span digests
	kindExpiry   = 'r' // r hour(maxEnd) seq → nothing: when block seq may go
	kindOp       = 'o' // o service 0x00 kind operation → nothing
	kindDep      = 'd' // d minute seq parent 0x00 child [0x00 n partition] → call count
	kindExemplar = 'x' // x t(ms) series → trace id, span id, duration
)

// FormatVersion is the layout version kept under the meta key.
const FormatVersion = 1

const hourNs = int64(3600e9)

func hourOf(ns int64) uint32 { return uint32(max(ns, 0) / hourNs) }

func blockKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{kindBlock}, seq)
}

func traceKey(dst []byte, id tracing.TraceID, seq uint64) []byte {
	dst = append(dst, kindTrace)
	dst = append(dst, id[:]...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// cleanName keeps a service name from breaking the 0x00-separated keys.
func cleanName(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// searchPrefix is the key prefix of one service's entries in one hour.
func searchPrefix(dst []byte, hour uint32, service string) []byte {
	dst = append(dst, kindSearch)
	dst = binary.BigEndian.AppendUint32(dst, hour)
	dst = append(dst, cleanName(service)...)
	return append(dst, 0)
}

func searchKey(dst []byte, hour uint32, service string, minStart int64, id tracing.TraceID, seq uint64) []byte {
	dst = searchPrefix(dst, hour, service)
	dst = binary.BigEndian.AppendUint64(dst, uint64(minStart))
	dst = append(dst, id[:]...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// parseSearchKeyTail reads minStart, trace id and seq from the end of a
// search key.
func parseSearchKeyTail(k []byte) (minStart int64, id tracing.TraceID, seq uint64, ok bool) {
	if len(k) < 1+4+1+8+16+8 {
		return 0, id, 0, false
	}
	t := k[len(k)-32:]
	minStart = int64(binary.BigEndian.Uint64(t[:8]))
	copy(id[:], t[8:24])
	return minStart, id, binary.BigEndian.Uint64(t[24:]), true
}

func expiryKey(hour uint32, seq uint64) []byte {
	k := binary.BigEndian.AppendUint32([]byte{kindExpiry}, hour)
	return binary.BigEndian.AppendUint64(k, seq)
}

func opKey(service string, kind tracing.SpanKind, op string) []byte {
	k := append([]byte{kindOp}, cleanName(service)...)
	k = append(k, 0, byte(kind))
	return append(k, op...)
}

// depKey is the key of the calls from parent to child counted in minute
// by write seq; with n > 0, of partition part of a log of n partitions
// (a tail after the child's name, which holds no 0x00).
func depKey(minute int64, seq uint64, parent, child string, n, part int) []byte {
	k := binary.BigEndian.AppendUint64([]byte{kindDep}, uint64(max(minute, 0)))
	k = binary.BigEndian.AppendUint64(k, seq)
	k = append(k, cleanName(parent)...)
	k = append(k, 0)
	k = append(k, cleanName(child)...)
	if n > 0 && part >= 0 {
		k = append(k, 0)
		k = binary.AppendUvarint(k, uint64(n))
		k = binary.AppendUvarint(k, uint64(part))
	}
	return k
}

// parseDepKey reads a dependency key: the services, and the partition and
// partition count (0 and -1 when the key has none). ok is false for a key
// too short or malformed.
func parseDepKey(k []byte) (parent, child []byte, n, part int, ok bool) {
	if len(k) < 17 {
		return nil, nil, 0, -1, false
	}
	names := k[17:]
	i := slices.Index(names, 0)
	if i < 0 {
		return nil, nil, 0, -1, false
	}
	parent, child = names[:i], names[i+1:]
	j := slices.Index(child, 0)
	if j < 0 {
		return parent, child, 0, -1, true
	}
	tail := child[j+1:]
	child = child[:j]
	nn, w := binary.Uvarint(tail)
	if w <= 0 || nn == 0 || nn > 1<<20 {
		return nil, nil, 0, -1, false
	}
	pp, w2 := binary.Uvarint(tail[w:])
	if w2 <= 0 || pp >= nn || w+w2 != len(tail) {
		return nil, nil, 0, -1, false
	}
	return parent, child, int(nn), int(pp), true
}

func exemplarKey(t int64, series string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{kindExemplar}, uint64(max(t, 0)))
	return append(k, series...)
}

// upper returns the smallest key greater than every key with prefix p.
func upper(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] < 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
