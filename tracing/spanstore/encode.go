package spanstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/tracing"
)

// Block encoding (FORMAT.md): one block per write, holding its processes
// (resources) once and its spans behind an offset table, so a trace
// lookup decodes only the spans it needs.

const blockVersion = 1

var errCorrupt = errors.New("spanstore: corrupt block")

// blockWriter builds one block and the index entries of its spans. It is
// reused across writes (see Store.writers).
type blockWriter struct {
	procs   []byte   // encoded processes
	nprocs  int      //
	spans   []byte   // encoded spans, back to back
	offsets []uint32 // start of each span in spans
	block   []byte   // the assembled block

	// Per span, what the indexes need.
	meta []spanMeta
	// Hashes of attribute key=value pairs for the search entries' blooms:
	// spans and processes point into it.
	hashes     []uint64
	procHashes [][2]int32
	// The same pairs as text, for the value dictionary (dict.go): pairKeys[i]
	// and pairVals[i] are the pair hashed in hashes[i].
	pairKeys, pairVals []string
}

// spanMeta is what the index entries of a span are made of.
type spanMeta struct {
	trace      tracing.TraceID
	span       tracing.SpanID
	parent     tracing.SpanID
	proc       int
	service    string
	name       string
	kind       tracing.SpanKind
	status     tracing.StatusCode
	start, end int64
	hashes     [2]int32 // range of w.hashes
}

func (w *blockWriter) reset() {
	w.procs, w.nprocs = w.procs[:0], 0
	w.spans, w.offsets = w.spans[:0], w.offsets[:0]
	w.block = w.block[:0]
	w.meta = w.meta[:0]
	w.hashes, w.procHashes = w.hashes[:0], w.procHashes[:0]
	clear(w.pairKeys) // drop references to the request's strings
	clear(w.pairVals)
	w.pairKeys, w.pairVals = w.pairKeys[:0], w.pairVals[:0]
}

// encode appends every span of td.
func (w *blockWriter) encode(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := ""
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		if service == "" {
			service = "unknown_service" // the OTel SDKs' default, without the process name
		}
		proc := w.nprocs
		w.procs = appendString(w.procs, service)
		w.procs = appendAttrs(w.procs, rs.Resource().Attributes(), "service.name")
		w.procs = binary.AppendUvarint(w.procs, uint64(rs.Resource().DroppedAttributesCount()))
		w.nprocs++
		lo := len(w.hashes)
		w.attrPairs(rs.Resource().Attributes(), "service.name")
		w.procHashes = append(w.procHashes, [2]int32{int32(lo), int32(len(w.hashes))})
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				w.span(spans.At(k), proc, service, ss.Scope())
			}
		}
	}
}

func (w *blockWriter) span(s ptrace.Span, proc int, service string, scope pcommon.InstrumentationScope) {
	w.offsets = append(w.offsets, uint32(len(w.spans)))
	start, end := int64(s.StartTimestamp()), int64(s.EndTimestamp())
	if start < 0 {
		start = 0
	}
	if end < start {
		end = start // a clock that went backwards: a zero-length span
	}
	m := spanMeta{
		trace: tracing.TraceID(s.TraceID()), span: tracing.SpanID(s.SpanID()), parent: tracing.SpanID(s.ParentSpanID()),
		proc: proc, service: service, name: s.Name(), kind: tracing.SpanKind(s.Kind()),
		status: tracing.StatusCode(s.Status().Code()), start: start, end: end,
	}
	if m.kind > tracing.SpanKindConsumer {
		m.kind = tracing.SpanKindUnspecified
	}
	if m.status > tracing.StatusError {
		m.status = tracing.StatusUnset
	}
	lo := len(w.hashes)
	w.attrPairs(s.Attributes(), TruncatedAttr)
	m.hashes = [2]int32{int32(lo), int32(len(w.hashes))}
	w.meta = append(w.meta, m)
	b := w.spans
	b = append(b, m.trace[:]...)
	b = append(b, m.span[:]...)
	b = append(b, m.parent[:]...)
	b = binary.AppendUvarint(b, uint64(proc))
	b = binary.AppendUvarint(b, uint64(s.Flags()))
	b = appendString(b, s.TraceState().AsRaw())
	b = appendString(b, m.name)
	b = append(b, byte(m.kind), byte(m.status))
	b = binary.AppendUvarint(b, uint64(start))
	b = binary.AppendUvarint(b, uint64(end-start))
	b = appendString(b, s.Status().Message())
	b = appendString(b, scope.Name())
	b = appendString(b, scope.Version())
	b = binary.AppendUvarint(b, uint64(s.DroppedAttributesCount()))
	b = binary.AppendUvarint(b, uint64(s.DroppedEventsCount()))
	b = binary.AppendUvarint(b, uint64(s.DroppedLinksCount()))
	truncated := uint64(0)
	if v, ok := s.Attributes().Get(TruncatedAttr); ok {
		truncated = uint64(max(v.Int(), 0))
	}
	b = binary.AppendUvarint(b, truncated)
	b = appendAttrs(b, s.Attributes(), TruncatedAttr)
	events := s.Events()
	b = binary.AppendUvarint(b, uint64(events.Len()))
	for i := 0; i < events.Len(); i++ {
		e := events.At(i)
		b = binary.AppendVarint(b, int64(e.Timestamp())-start)
		b = appendString(b, e.Name())
		b = appendAttrs(b, e.Attributes(), "")
		b = binary.AppendUvarint(b, uint64(e.DroppedAttributesCount()))
	}
	links := s.Links()
	b = binary.AppendUvarint(b, uint64(links.Len()))
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		tid, sid := l.TraceID(), l.SpanID()
		b = append(b, tid[:]...)
		b = append(b, sid[:]...)
		b = appendString(b, l.TraceState().AsRaw())
		b = appendAttrs(b, l.Attributes(), "")
		b = binary.AppendUvarint(b, uint64(l.DroppedAttributesCount()))
	}
	w.spans = b
}

// attrPairs appends each attribute's key and value text (as filters
// compare it) and its bloom hash, leaving out skip.
func (w *blockWriter) attrPairs(m pcommon.Map, skip string) {
	var buf [32]byte
	m.Range(func(k string, v pcommon.Value) bool {
		if k == skip {
			return true
		}
		var text string
		switch v.Type() {
		case pcommon.ValueTypeStr:
			text = v.Str()
		case pcommon.ValueTypeBool:
			text = strconv.FormatBool(v.Bool())
		case pcommon.ValueTypeInt:
			text = string(strconv.AppendInt(buf[:0], v.Int(), 10))
		case pcommon.ValueTypeDouble:
			text = string(strconv.AppendFloat(buf[:0], v.Double(), 'g', -1, 64))
		case pcommon.ValueTypeBytes:
			text = string(v.Bytes().AsRaw())
		default:
			text = v.AsString()
		}
		w.pairKeys = append(w.pairKeys, k)
		w.pairVals = append(w.pairVals, text)
		w.hashes = append(w.hashes, attrHash(k, text))
		return true
	})
}

// attrHash is FNV-1a over key, a zero byte and the value: stable across
// processes, unlike maphash, because blooms are stored.
func attrHash(k, v string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(k); i++ {
		h = (h ^ uint64(k[i])) * 1099511628211
	}
	h *= 1099511628211 // the separator
	for i := 0; i < len(v); i++ {
		h = (h ^ uint64(v[i])) * 1099511628211
	}
	return h
}

// TruncatedAttr is the span attribute ingest sets to the number of
// attribute values it shortened; the store keeps it as the span's
// TruncatedValues, not as an attribute.
const TruncatedAttr = "sextant.truncated_values"

// assemble lays the block out: version, processes, span count, offset
// table (fixed 4 bytes each, for random access), spans.
func (w *blockWriter) assemble() []byte {
	b := append(w.block[:0], blockVersion)
	b = binary.AppendUvarint(b, uint64(w.nprocs))
	b = append(b, w.procs...)
	b = binary.AppendUvarint(b, uint64(len(w.offsets)))
	for _, o := range w.offsets {
		b = binary.LittleEndian.AppendUint32(b, o)
	}
	b = append(b, w.spans...)
	w.block = b
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendAttrs appends a count and the attributes, leaving out skip.
func appendAttrs(b []byte, m pcommon.Map, skip string) []byte {
	n := m.Len()
	if skip != "" {
		if _, ok := m.Get(skip); ok {
			n--
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	m.Range(func(k string, v pcommon.Value) bool {
		if k == skip && skip != "" {
			return true
		}
		b = appendString(b, k)
		switch v.Type() {
		case pcommon.ValueTypeBool:
			x := int64(0)
			if v.Bool() {
				x = 1
			}
			b = append(b, byte(tracing.ValueBool))
			b = binary.AppendVarint(b, x)
		case pcommon.ValueTypeInt:
			b = append(b, byte(tracing.ValueInt))
			b = binary.AppendVarint(b, v.Int())
		case pcommon.ValueTypeDouble:
			b = append(b, byte(tracing.ValueFloat))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Double()))
		case pcommon.ValueTypeBytes:
			b = append(b, byte(tracing.ValueBytes))
			b = binary.AppendUvarint(b, uint64(v.Bytes().Len()))
			b = append(b, v.Bytes().AsRaw()...)
		case pcommon.ValueTypeStr:
			b = append(b, byte(tracing.ValueString))
			b = appendString(b, v.Str())
		default: // arrays and maps as JSON text; empty as ""
			b = append(b, byte(tracing.ValueString))
			b = appendString(b, v.AsString())
		}
		return true
	})
	return b
}

// reader decodes a block. Errors stick: after the first, every read
// returns zero values and err is set.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) str() string { return string(r.bytes(r.uvarint())) }

// count reads a count that cannot exceed what is left (each item takes
// at least min bytes), so corrupt input cannot make us allocate much.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *reader) attrs() []tracing.KeyValue {
	n := r.count(2)
	if n == 0 {
		return nil
	}
	out := make([]tracing.KeyValue, n)
	for i := range out {
		kv := &out[i]
		kv.Key = r.str()
		kv.Type = tracing.ValueType(r.byte1())
		switch kv.Type {
		case tracing.ValueBool, tracing.ValueInt:
			kv.Int = r.varint()
		case tracing.ValueFloat:
			if b := r.bytes(8); b != nil {
				kv.Float = math.Float64frombits(binary.LittleEndian.Uint64(b))
			}
		case tracing.ValueString, tracing.ValueBytes:
			kv.Str = r.str()
		default:
			r.fail()
		}
	}
	return out
}

// block is a decoded block header: its processes and span offsets.
type block struct {
	procs   []*tracing.Resource
	offsets []byte // 4 bytes per span
	spans   []byte
}

func decodeBlock(b []byte) (*block, error) {
	if len(b) == 0 || b[0] != blockVersion {
		return nil, fmt.Errorf("%w: not a version %d block", errCorrupt, blockVersion)
	}
	r := &reader{b: b[1:]}
	np := r.count(2)
	blk := &block{procs: make([]*tracing.Resource, np)}
	for i := range blk.procs {
		blk.procs[i] = &tracing.Resource{Service: r.str(), Attributes: r.attrs()}
		r.uvarint() // dropped resource attributes
	}
	n := r.count(4)
	blk.offsets = r.bytes(uint64(n) * 4)
	blk.spans = r.b
	if r.err != nil {
		return nil, r.err
	}
	return blk, nil
}

func (blk *block) len() int { return len(blk.offsets) / 4 }

// span decodes the i-th span.
func (blk *block) span(i int) (tracing.Span, error) {
	var s tracing.Span
	if i < 0 || i >= blk.len() {
		return s, errCorrupt
	}
	off := binary.LittleEndian.Uint32(blk.offsets[i*4:])
	if int(off) > len(blk.spans) {
		return s, errCorrupt
	}
	r := &reader{b: blk.spans[off:]}
	copy(s.TraceID[:], r.bytes(16))
	copy(s.SpanID[:], r.bytes(8))
	copy(s.ParentSpanID[:], r.bytes(8))
	proc := r.uvarint()
	if proc >= uint64(len(blk.procs)) {
		return s, errCorrupt
	}
	s.Resource = blk.procs[proc]
	s.Flags = uint32(r.uvarint())
	s.TraceState = r.str()
	s.Name = r.str()
	s.Kind = tracing.SpanKind(r.byte1())
	s.Status = tracing.StatusCode(r.byte1())
	s.Start = int64(r.uvarint())
	s.End = s.Start + int64(r.uvarint())
	s.StatusMessage = r.str()
	s.ScopeName = r.str()
	s.ScopeVersion = r.str()
	s.DroppedAttributes = uint32(r.uvarint())
	s.DroppedEvents = uint32(r.uvarint())
	s.DroppedLinks = uint32(r.uvarint())
	s.TruncatedValues = uint32(r.uvarint())
	s.Attributes = r.attrs()
	if n := r.count(4); n > 0 {
		s.Events = make([]tracing.Event, n)
		for i := range s.Events {
			e := &s.Events[i]
			e.Time = s.Start + r.varint()
			e.Name = r.str()
			e.Attributes = r.attrs()
			e.DroppedAttributes = uint32(r.uvarint())
		}
	}
	if n := r.count(27); n > 0 { // ids, and at least a byte each for state, attributes, dropped
		s.Links = make([]tracing.Link, n)
		for i := range s.Links {
			l := &s.Links[i]
			copy(l.TraceID[:], r.bytes(16))
			copy(l.SpanID[:], r.bytes(8))
			l.TraceState = r.str()
			l.Attributes = r.attrs()
			l.DroppedAttributes = uint32(r.uvarint())
		}
	}
	return s, r.err
}
