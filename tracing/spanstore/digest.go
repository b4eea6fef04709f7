package spanstore

import (
	"encoding/binary"

	"github.com/sextant-dev/sextant/tracing"
)

// A search entry's value holds a digest per span of one service in one
// trace and block: enough to test operation, kind, status, start and
// duration without reading the block. Operation names are listed once.

// digest is one span's summary.
type digest struct {
	op         string
	kind       tracing.SpanKind
	status     tracing.StatusCode
	start, dur int64
	index      int // in the block
}

func appendDigests(b []byte, meta []spanMeta, idx []int32, minStart int64) []byte {
	// Operation table: few distinct names per entry, so a linear scan.
	var ops [16]string
	opList := ops[:0]
	opOf := func(name string) int {
		for i, o := range opList {
			if o == name {
				return i
			}
		}
		opList = append(opList, name)
		return len(opList) - 1
	}
	var tmp [64]int
	codes := tmp[:0]
	for _, x := range idx {
		codes = append(codes, opOf(meta[x].name))
	}
	b = binary.AppendUvarint(b, uint64(len(opList)))
	for _, o := range opList {
		b = appendString(b, o)
	}
	b = binary.AppendUvarint(b, uint64(len(idx)))
	for i, x := range idx {
		m := &meta[x]
		b = binary.AppendUvarint(b, uint64(codes[i]))
		b = append(b, byte(m.kind), byte(m.status))
		b = binary.AppendUvarint(b, uint64(m.start-minStart))
		b = binary.AppendUvarint(b, uint64(m.end-m.start))
		b = binary.AppendUvarint(b, uint64(x))
	}
	return b
}

// decodeDigests appends the digests of a search entry to dst.
func decodeDigests(dst []digest, v []byte, minStart int64) ([]digest, error) {
	r := &reader{b: v}
	nops := r.count(1)
	var buf [16]string
	ops := buf[:0]
	for range nops {
		ops = append(ops, r.str())
	}
	n := r.count(5)
	for range n {
		op := r.uvarint()
		d := digest{kind: tracing.SpanKind(r.byte1()), status: tracing.StatusCode(r.byte1())}
		d.start = minStart + int64(r.uvarint())
		d.dur = int64(r.uvarint())
		d.index = int(r.uvarint())
		if op >= uint64(len(ops)) {
			r.fail()
			break
		}
		d.op = ops[op]
		dst = append(dst, d)
	}
	return dst, r.err
}

// traceEntry is a decoded trace entry: where a trace's spans are in one
// block.
type traceEntry struct {
	seq           uint64
	minStart, end int64
	spans         []int
}

func decodeTraceEntry(seq uint64, v []byte) (traceEntry, error) {
	r := &reader{b: v}
	e := traceEntry{seq: seq}
	e.minStart = int64(r.uvarint())
	e.end = e.minStart + int64(r.uvarint())
	n := r.count(1)
	e.spans = make([]int, n)
	for i := range e.spans {
		e.spans[i] = int(r.uvarint())
	}
	return e, r.err
}
