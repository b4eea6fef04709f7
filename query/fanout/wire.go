package fanout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// The metric side of the wire format (FORMAT.md): compact binary, append
// style. Every message starts with wireVersion; integers are uvarints (or
// zigzag varints for times), strings a uvarint length then the bytes,
// values 8 bytes of IEEE 754 little endian, so NaN (no data) and
// infinities cross unchanged, which JSON cannot carry.
const wireVersion = 1

// Limits of the decoder: a request or answer beyond them is malformed.
const (
	maxQueryDepth = 256     // nesting of :and/:or/:not in a query tree
	maxListLen    = 1 << 24 // entries of any list (series, values, tags)
)

// errWire marks a message that cannot be decoded.
var errWire = errors.New("fanout: malformed message")

// appendFetchRequest encodes req.
func appendFetchRequest(dst []byte, req *tsdb.FetchRequest) []byte {
	// Fixed fields first, then the lists, then the query tree: the
	// decoder reads in one pass, no lookahead.
	dst = append(dst, wireVersion)
	dst = binary.AppendVarint(dst, req.Start)
	dst = binary.AppendVarint(dst, req.End)
	dst = binary.AppendVarint(dst, req.Step)
	dst = append(dst, byte(req.CF), byte(req.Aggregation))
	dst = binary.AppendUvarint(dst, uint64(len(req.GroupBy)))
	for _, k := range req.GroupBy {
		dst = appendString(dst, k)
	}
	dst = appendPartitions(dst, req.Partitions)
	return appendQuery(dst, req.Query)
}

// decodeFetchRequest decodes a request encoded by appendFetchRequest.
func decodeFetchRequest(src []byte) (tsdb.FetchRequest, error) {
	var req tsdb.FetchRequest
	d := decoder{b: src}
	d.version()
	// Zigzag varints: times are Unix ms and may be negative (a graph
	// before 1970 is legal input).
	req.Start, req.End, req.Step = d.varint(), d.varint(), d.varint()
	req.CF, req.Aggregation = tsdb.Consolidation(d.byte1()), tsdb.Aggregation(d.byte1())
	if n := d.length(); n > 0 {
		req.GroupBy = make([]string, n)
		for i := range req.GroupBy {
			req.GroupBy[i] = d.str()
		}
	}
	req.Partitions = d.partitions()
	req.Query = d.query(0)
	if err := d.end(); err != nil {
		return tsdb.FetchRequest{}, err
	}
	// An enum beyond the contract's range is a newer sender or a
	// corrupt message; refusing it beats evaluating a wrong default.
	if req.CF > tsdb.CFMax || req.Aggregation > tsdb.AggMax {
		return tsdb.FetchRequest{}, fmt.Errorf("%w: consolidation %d, aggregation %d", errWire, req.CF, req.Aggregation)
	}
	return req, nil
}

// appendSeriesSet encodes a fetch answer.
func appendSeriesSet(dst []byte, set *tsdb.SeriesSet) []byte {
	// Size the buffer once: growing a megabyte answer by appends copied
	// it several times over (profiled on BenchmarkFanoutGroupedSum).
	size := 32
	for _, s := range set.Series {
		size += 24 + 8*len(s.Values)
		for _, t := range s.Tags {
			size += 4 + len(t.Key) + len(t.Value)
		}
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, wireVersion)
	// The statistics travel with the answer so that a query node's
	// explain and limits count what every store node read.
	dst = binary.AppendUvarint(dst, uint64(set.Stats.SeriesScanned))
	dst = binary.AppendUvarint(dst, uint64(set.Stats.DatapointsScanned))
	dst = binary.AppendUvarint(dst, uint64(len(set.Series)))
	var enc []byte
	for _, s := range set.Series {
		// The tags in the store's own binary form (tags.Set.AppendTo),
		// length-prefixed; enc is reused across series.
		enc = s.Tags.AppendTo(enc[:0])
		dst = binary.AppendUvarint(dst, uint64(len(enc)))
		dst = append(dst, enc...)
		dst = append(dst, byte(s.DSType))
		dst = binary.AppendUvarint(dst, uint64(len(s.Values)))
		for _, v := range s.Values {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
	}
	return dst
}

// decodeSeriesSet decodes an answer encoded by appendSeriesSet.
func decodeSeriesSet(src []byte) (*tsdb.SeriesSet, error) {
	d := decoder{b: src}
	d.version()
	set := &tsdb.SeriesSet{}
	set.Stats.SeriesScanned, set.Stats.DatapointsScanned = d.bigCount(), d.bigCount()
	n := d.length()
	if d.err == nil && n > 0 {
		// Capacity bounded by the bytes left: a forged count cannot make
		// the decoder allocate more than the message could hold.
		set.Series = make([]tsdb.Series, 0, min(n, len(d.b)))
	}
	for i := 0; i < n && d.err == nil; i++ {
		var s tsdb.Series
		ts, err := tags.Decode(d.bytes())
		if err != nil && d.err == nil {
			d.err = fmt.Errorf("%w: series %d: %w", errWire, i, err)
		}
		s.Tags, s.DSType = ts, tsdb.DSType(d.byte1())
		nv := d.length()
		// Checked before allocating, for the same reason.
		if d.err == nil && nv*8 > len(d.b) {
			d.fail("values")
		}
		if d.err != nil {
			break
		}
		s.Values = make([]float64, nv)
		for j := range s.Values {
			s.Values[j] = math.Float64frombits(binary.LittleEndian.Uint64(d.b[8*j:]))
		}
		d.b = d.b[8*nv:]
		set.Series = append(set.Series, s)
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return set, nil
}

// appendTagsRequest encodes req.
func appendTagsRequest(dst []byte, req *tsdb.TagsRequest) []byte {
	dst = append(dst, wireVersion)
	dst = appendString(dst, req.Key)
	dst = appendString(dst, req.After)
	// A negative limit cannot be sent as a uvarint: it travels as 0,
	// which the store reads as no limit, as it reads a negative one.
	dst = binary.AppendUvarint(dst, uint64(max(req.Limit, 0)))
	dst = appendPartitions(dst, req.Partitions)
	// A flag byte tells no query (every series) from a query, since
	// the query encoding has no empty form.
	if req.Query == nil {
		return append(dst, 0)
	}
	return appendQuery(append(dst, 1), req.Query)
}

// decodeTagsRequest decodes a request encoded by appendTagsRequest.
func decodeTagsRequest(src []byte) (tsdb.TagsRequest, error) {
	var req tsdb.TagsRequest
	d := decoder{b: src}
	d.version()
	req.Key, req.After, req.Limit = d.str(), d.str(), d.count()
	req.Partitions = d.partitions()
	if d.byte1() == 1 {
		req.Query = d.query(0)
	}
	if err := d.end(); err != nil {
		return tsdb.TagsRequest{}, err
	}
	return req, nil
}

// appendTagCounts encodes a tags answer.
func appendTagCounts(dst []byte, tcs []tsdb.TagCount) []byte {
	dst = append(dst, wireVersion)
	dst = binary.AppendUvarint(dst, uint64(len(tcs)))
	for _, tc := range tcs {
		dst = appendString(dst, tc.Name)
		dst = binary.AppendUvarint(dst, uint64(tc.Count))
	}
	return dst
}

// decodeTagCounts decodes an answer encoded by appendTagCounts.
func decodeTagCounts(src []byte) ([]tsdb.TagCount, error) {
	d := decoder{b: src}
	d.version()
	n := d.length()
	var out []tsdb.TagCount
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, tsdb.TagCount{Name: d.str(), Count: d.count()})
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// appendPartitions encodes the partition filter: N = 0 for none (every
// partition), else N and the wanted partitions.
func appendPartitions(dst []byte, p *tsdb.Partitions) []byte {
	if p == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(p.N))
	dst = binary.AppendUvarint(dst, uint64(len(p.Want)))
	for _, w := range p.Want {
		dst = binary.AppendUvarint(dst, uint64(w))
	}
	return dst
}

// appendQuery encodes a query tree in prefix order: the operator, then
// its key and value(s), or its sub-queries.
func appendQuery(dst []byte, q *tags.Query) []byte {
	dst = append(dst, byte(q.Op()))
	switch q.Op() {
	case tags.OpTrue, tags.OpFalse:
	case tags.OpAnd, tags.OpOr, tags.OpNot:
		for _, s := range q.Subs() {
			dst = appendQuery(dst, s)
		}
	case tags.OpHas:
		dst = appendString(dst, q.Key())
	case tags.OpIn:
		dst = appendString(dst, q.Key())
		dst = binary.AppendUvarint(dst, uint64(len(q.Values())))
		for _, v := range q.Values() {
			dst = appendString(dst, v)
		}
	default:
		dst = appendString(dst, q.Key())
		dst = appendString(dst, q.Value())
	}
	return dst
}

// appendString encodes s as its length and its bytes.
func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decoder reads a message; the first error sticks and later reads return
// zero values, so a decode function checks once, at the end.
type decoder struct {
	b   []byte
	err error
}

// fail records the first error, naming what could not be read.
func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errWire, what)
	}
}

// version reads the leading version byte; another version is an error,
// not a guess: the two sides must be upgraded together.
func (d *decoder) version() {
	if v := d.byte1(); v != wireVersion && d.err == nil {
		d.err = fmt.Errorf("%w: version %d, want %d", errWire, v, wireVersion)
	}
}

// end returns the first error, or an error when bytes are left over: a
// message must be read to its last byte, so a length off by one shows.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the end", errWire, len(d.b))
	}
	return d.err
}

// byte1 reads one byte (0 once an error is recorded).
func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("length")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// uvarint reads an unsigned varint; varint a zigzag one.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// count reads a non-negative int.
func (d *decoder) count() int {
	x := d.uvarint()
	if x > math.MaxInt32 {
		d.fail("count")
		return 0
	}
	return int(x)
}

// bigCount reads a non-negative int of any size (statistics).
func (d *decoder) bigCount() int {
	x := d.uvarint()
	if x > math.MaxInt {
		d.fail("count")
		return 0
	}
	return int(x)
}

// length reads the length of a list, bounded by maxListLen.
func (d *decoder) length() int {
	x := d.uvarint()
	if x > maxListLen {
		d.fail("list length")
		return 0
	}
	return int(x)
}

// bytes reads a length-prefixed byte string. The result aliases the
// message (no copy): callers that keep it convert it (str) or decode it.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("string")
	}
	if d.err != nil {
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// str reads a length-prefixed string, copied out of the message.
func (d *decoder) str() string { return string(d.bytes()) }

// partitions reads a partition filter (nil for none) and validates it
// (every wanted partition in [0, N)) as the store would.
func (d *decoder) partitions() *tsdb.Partitions {
	n := d.count()
	if n == 0 || d.err != nil {
		return nil
	}
	k := d.length()
	if d.err == nil && k > len(d.b) {
		d.fail("partitions")
	}
	if d.err != nil {
		return nil
	}
	p := &tsdb.Partitions{N: n, Want: make([]int, k)}
	for i := range p.Want {
		p.Want[i] = d.count()
	}
	if err := p.Validate(); err != nil && d.err == nil {
		d.err = fmt.Errorf("%w: %w", errWire, err)
	}
	return p
}

// query decodes a query tree, rebuilding it through the constructors of
// tags (which compile regexes and simplify as the sender's did).
func (d *decoder) query(depth int) *tags.Query {
	// The depth bound keeps a forged deeply nested query from
	// exhausting the stack of the recursive decoder.
	if depth > maxQueryDepth {
		d.fail("query depth")
	}
	op := tags.Op(d.byte1())
	if d.err != nil {
		return tags.False()
	}
	switch op {
	case tags.OpTrue:
		return tags.True()
	case tags.OpFalse:
		return tags.False()
	case tags.OpAnd:
		a := d.query(depth + 1)
		return tags.And(a, d.query(depth+1))
	case tags.OpOr:
		a := d.query(depth + 1)
		return tags.Or(a, d.query(depth+1))
	case tags.OpNot:
		return tags.Not(d.query(depth + 1))
	case tags.OpHas:
		return tags.Has(d.str())
	case tags.OpIn:
		key := d.str()
		n := d.length()
		if d.err == nil && n > len(d.b) {
			d.fail("in list")
		}
		vs := make([]string, 0, min(n, len(d.b)))
		for i := 0; i < n && d.err == nil; i++ {
			vs = append(vs, d.str())
		}
		return tags.In(key, vs)
	}
	key, value := d.str(), d.str()
	switch op {
	case tags.OpEq:
		return tags.Eq(key, value)
	case tags.OpLt:
		return tags.Lt(key, value)
	case tags.OpLe:
		return tags.Le(key, value)
	case tags.OpGt:
		return tags.Gt(key, value)
	case tags.OpGe:
		return tags.Ge(key, value)
	case tags.OpRe, tags.OpReIC:
		re := tags.Re
		if op == tags.OpReIC {
			re = tags.ReIC
		}
		q, err := re(key, value)
		if err != nil {
			if d.err == nil {
				d.err = fmt.Errorf("%w: %w", errWire, err)
			}
			return tags.False()
		}
		return q
	}
	d.fail("query operator")
	return tags.False()
}
