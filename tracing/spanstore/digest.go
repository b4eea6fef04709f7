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

func appendDigests(b []byte, w *blockWriter, idx []int32, minStart int64) []byte {
	meta := w.meta
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
	return appendBloom(b, w, idx)
}

// Bloom filter of the entry's attribute key=value pairs (its spans' and
// their processes'): exact attribute filters skip entries it rules out
// without reading the block. At least 10 bits per pair (a power of two,
// at most 4096 bits) and 5 probes: under 1% false positives.
const bloomProbes = 5

func appendBloom(b []byte, w *blockWriter, idx []int32) []byte {
	n := 0
	var procs uint64 // processes seen, for the first 64
	for _, x := range idx {
		m := &w.meta[x]
		n += int(m.hashes[1] - m.hashes[0])
		if m.proc < 64 && procs&(1<<m.proc) == 0 {
			procs |= 1 << m.proc
			ph := w.procHashes[m.proc]
			n += int(ph[1] - ph[0])
		}
	}
	if n == 0 {
		return binary.AppendUvarint(b, 0)
	}
	// A power of two of 64-bit words, so a probe's bit is a mask away.
	words := 1
	for words*64 < n*10 && words < 64 {
		words *= 2
	}
	b = binary.AppendUvarint(b, uint64(words*8))
	start := len(b)
	b = append(b, make([]byte, words*8)...)
	bits := b[start:]
	set := func(h uint64) {
		for i := range uint64(bloomProbes) {
			bit := (h + i*(h>>32|1)) & uint64(words*64-1)
			bits[bit/8] |= 1 << (bit % 8)
		}
	}
	procs = 0
	for _, x := range idx {
		m := &w.meta[x]
		for _, h := range w.hashes[m.hashes[0]:m.hashes[1]] {
			set(h)
		}
		if m.proc >= 64 || procs&(1<<m.proc) == 0 {
			if m.proc < 64 {
				procs |= 1 << m.proc
			}
			ph := w.procHashes[m.proc]
			for _, h := range w.hashes[ph[0]:ph[1]] {
				set(h)
			}
		}
	}
	return b
}

// bloomHas reports whether the pair with hash h may be in the entry.
func bloomHas(bits []byte, h uint64) bool {
	m := uint64(len(bits) * 8)
	if m == 0 || m&(m-1) != 0 {
		return len(bits) != 0 // no attributes at all; or not ours: cannot rule out
	}
	for i := range uint64(bloomProbes) {
		bit := (h + i*(h>>32|1)) & (m - 1)
		if bits[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

// decodeDigests appends the digests of a search entry to dst and returns
// its bloom (aliasing v).
func decodeDigests(dst []digest, v []byte, minStart int64) ([]digest, []byte, error) {
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
	bloom := r.bytes(r.uvarint())
	return dst, bloom, r.err
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
