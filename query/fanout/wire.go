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
// style. Every message starts with its version byte; integers are
// uvarints (or zigzag varints for times), strings a uvarint length then
// the bytes, values 8 bytes of IEEE 754 little endian, so NaN (no data)
// and infinities cross unchanged, which JSON cannot carry.
//
// Version 2 adds to requests the log offsets a strong read waits for, the
// time window of a tags request, and the series request; version 3 the
// budget of a fetch (what is left of the query's limits) and the
// partitions of a dependencies request. A sender writes the lowest version
// that holds what a request carries, so store nodes of the releases
// before still understand what they can; answers stay version 1, except
// the series answer (version 2, as its request).
const (
	wireVersionBase   = 1 // the first: what a sender writes when it can
	wireVersionStrong = 2 // strong reads' offsets, the tags window, series
	wireVersionBudget = 3 // a fetch's budget, dependencies by partition
	wireVersion       = 3 // the newest version, which decoders read up to
)

// partOffset asks a store node to wait, before it reads, until it has
// applied partition P of the log up to Offset (exclusive): the log's end
// when a strongly consistent read arrived at the query node.
type partOffset struct {
	P      int
	Offset int64
}

// Limits of the decoder: a request or answer beyond them is malformed.
const (
	maxQueryDepth = 256     // nesting of :and/:or/:not in a query tree
	maxListLen    = 1 << 24 // entries of any list (series, values, tags)
)

// errWire marks a message that cannot be decoded.
var errWire = errors.New("fanout: malformed message")

// reqMeta is what a fetch or series request carries besides its tsdb
// request.
type reqMeta struct {
	// offs are a strong read's offsets to wait for (version 2).
	offs []partOffset
	// budget, when set, is what is left of the query's limits for the
	// node's share (version 3); a zero measure is no limit.
	budget *tsdb.Cost
}

// appendFetchRequest encodes req and m, in the lowest version that holds
// them: 3 with a budget, 2 with offsets, else 1.
func appendFetchRequest(dst []byte, req *tsdb.FetchRequest, m reqMeta) []byte {
	// Fixed fields first, then the lists, then the query tree: the
	// decoder reads in one pass, no lookahead.
	v := byte(wireVersionBase)
	switch {
	case m.budget != nil:
		v = wireVersionBudget
	case len(m.offs) > 0:
		v = wireVersionStrong
	}
	dst = append(dst, v)
	dst = binary.AppendVarint(dst, req.Start)
	dst = binary.AppendVarint(dst, req.End)
	dst = binary.AppendVarint(dst, req.Step)
	dst = append(dst, byte(req.CF), byte(req.Aggregation))
	dst = binary.AppendUvarint(dst, uint64(len(req.GroupBy)))
	for _, k := range req.GroupBy {
		dst = appendString(dst, k)
	}
	dst = appendPartitions(dst, req.Partitions)
	dst = appendQuery(dst, req.Query)
	if v >= wireVersionStrong {
		dst = appendOffsets(dst, m.offs)
	}
	if v >= wireVersionBudget {
		dst = appendBudget(dst, m.budget)
	}
	return dst
}

// decodeFetchRequest decodes a request encoded by appendFetchRequest.
func decodeFetchRequest(src []byte) (tsdb.FetchRequest, reqMeta, error) {
	var req tsdb.FetchRequest
	var m reqMeta
	d := decoder{b: src}
	v := d.version(wireVersionBudget)
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
	if v >= wireVersionStrong {
		m.offs = d.offsets()
	}
	if v >= wireVersionBudget {
		m.budget = d.budget()
	}
	if err := d.end(); err != nil {
		return tsdb.FetchRequest{}, reqMeta{}, err
	}
	// An enum beyond the contract's range is a newer sender or a
	// corrupt message; refusing it beats evaluating a wrong default.
	if req.CF > tsdb.CFMax || req.Aggregation > tsdb.AggMax {
		return tsdb.FetchRequest{}, reqMeta{}, fmt.Errorf("%w: consolidation %d, aggregation %d", errWire, req.CF, req.Aggregation)
	}
	return req, m, nil
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
	// The statistics travel with the answer so that a query node's
	// explain and limits count what every store node read.
	dst = append(dst, wireVersionBase)
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
	d.version(wireVersionBase)
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

// appendTagsRequest encodes req and the offsets to wait for (version 2
// when there are any or req has a time window).
func appendTagsRequest(dst []byte, req *tsdb.TagsRequest, offs []partOffset) []byte {
	v := byte(wireVersionBase)
	if len(offs) > 0 || req.Start != 0 || req.End != 0 {
		v = wireVersionStrong
	}
	dst = append(dst, v)
	dst = appendString(dst, req.Key)
	dst = appendString(dst, req.After)
	// A negative limit cannot be sent as a uvarint: it travels as 0,
	// which the store reads as no limit, as it reads a negative one.
	dst = binary.AppendUvarint(dst, uint64(max(req.Limit, 0)))
	if v == wireVersionStrong {
		dst = binary.AppendVarint(dst, req.Start)
		dst = binary.AppendVarint(dst, req.End)
	}
	dst = appendPartitions(dst, req.Partitions)
	// A flag byte tells no query (every series) from a query, since
	// the query encoding has no empty form.
	if req.Query == nil {
		dst = append(dst, 0)
	} else {
		dst = appendQuery(append(dst, 1), req.Query)
	}
	if v == wireVersionStrong {
		dst = appendOffsets(dst, offs)
	}
	return dst
}

// decodeTagsRequest decodes a request encoded by appendTagsRequest.
func decodeTagsRequest(src []byte) (tsdb.TagsRequest, []partOffset, error) {
	var req tsdb.TagsRequest
	d := decoder{b: src}
	v := d.version(wireVersionStrong)
	req.Key, req.After, req.Limit = d.str(), d.str(), d.count()
	if v == wireVersionStrong {
		req.Start, req.End = d.varint(), d.varint()
	}
	req.Partitions = d.partitions()
	if d.byte1() == 1 {
		req.Query = d.query(0)
	}
	var offs []partOffset
	if v == wireVersionStrong {
		offs = d.offsets()
	}
	if err := d.end(); err != nil {
		return tsdb.TagsRequest{}, nil, err
	}
	return req, offs, nil
}

// appendSeriesRequest encodes a series request: version 3 with a
// budget, else 2.
func appendSeriesRequest(dst []byte, req *tsdb.SeriesRequest, m reqMeta) []byte {
	v := byte(wireVersionStrong)
	if m.budget != nil {
		v = wireVersionBudget
	}
	dst = append(dst, v)
	dst = binary.AppendVarint(dst, req.Start)
	dst = binary.AppendVarint(dst, req.End)
	dst = binary.AppendUvarint(dst, uint64(max(req.Limit, 0)))
	dst = appendPartitions(dst, req.Partitions)
	dst = appendQuery(dst, req.Query)
	dst = appendOffsets(dst, m.offs)
	if v == wireVersionBudget {
		dst = appendBudget(dst, m.budget)
	}
	return dst
}

// decodeSeriesRequest decodes a request encoded by appendSeriesRequest.
func decodeSeriesRequest(src []byte) (tsdb.SeriesRequest, reqMeta, error) {
	var req tsdb.SeriesRequest
	var m reqMeta
	d := decoder{b: src}
	v := d.version(wireVersionBudget)
	if v < wireVersionStrong {
		d.fail("version of a series request")
	}
	req.Start, req.End, req.Limit = d.varint(), d.varint(), d.count()
	req.Partitions = d.partitions()
	req.Query = d.query(0)
	m.offs = d.offsets()
	if v == wireVersionBudget {
		m.budget = d.budget()
	}
	if err := d.end(); err != nil {
		return tsdb.SeriesRequest{}, reqMeta{}, err
	}
	return req, m, nil
}

// appendBudget encodes a budget: its three measures (0: no limit).
func appendBudget(dst []byte, b *tsdb.Cost) []byte {
	dst = binary.AppendUvarint(dst, uint64(max(b.Series, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(b.Datapoints, 0)))
	return binary.AppendUvarint(dst, uint64(max(b.Bytes, 0)))
}

// budget reads a budget.
func (d *decoder) budget() *tsdb.Cost {
	return &tsdb.Cost{Series: d.bigCount(), Datapoints: d.bigCount(), Bytes: d.bigCount()}
}

// appendSeriesList encodes a series answer: the tag sets, and whether
// there were more than the request's limit.
func appendSeriesList(dst []byte, sets []tags.Set, more bool) []byte {
	dst = append(dst, wireVersionStrong)
	if more {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(sets)))
	var enc []byte
	for _, s := range sets {
		enc = s.AppendTo(enc[:0])
		dst = binary.AppendUvarint(dst, uint64(len(enc)))
		dst = append(dst, enc...)
	}
	return dst
}

// decodeSeriesList decodes an answer encoded by appendSeriesList.
func decodeSeriesList(src []byte) ([]tags.Set, bool, error) {
	d := decoder{b: src}
	if v := d.version(wireVersionStrong); v != wireVersionStrong {
		d.fail("version of a series answer")
	}
	more := d.byte1()
	if more > 1 {
		d.fail("more")
	}
	n := d.length()
	var out []tags.Set
	for i := 0; i < n && d.err == nil; i++ {
		ts, err := tags.Decode(d.bytes())
		if err != nil && d.err == nil {
			d.err = fmt.Errorf("%w: tags: %w", errWire, err)
		}
		out = append(out, ts)
	}
	if err := d.end(); err != nil {
		return nil, false, err
	}
	return out, more == 1, nil
}

// appendOffsets encodes the offsets a strong read waits for.
func appendOffsets(dst []byte, offs []partOffset) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(offs)))
	for _, o := range offs {
		dst = binary.AppendUvarint(dst, uint64(o.P))
		dst = binary.AppendUvarint(dst, uint64(max(o.Offset, 0)))
	}
	return dst
}

// appendTagCounts encodes a tags answer.
func appendTagCounts(dst []byte, tcs []tsdb.TagCount) []byte {
	dst = append(dst, wireVersionBase)
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
	d.version(wireVersionBase)
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

// version reads the version byte, which must be from 1 to highest: a
// newer version is an error, not a guess (store nodes are upgraded first).
func (d *decoder) version(highest byte) byte {
	v := d.byte1()
	if (v < wireVersionBase || v > highest) && d.err == nil {
		d.err = fmt.Errorf("%w: version %d, want %d to %d", errWire, v, wireVersionBase, highest)
	}
	return v
}

// offsets reads the offsets of a strong read.
func (d *decoder) offsets() []partOffset {
	k := d.length()
	if d.err == nil && k > len(d.b)/2 {
		d.fail("offsets")
	}
	if d.err != nil || k == 0 {
		return nil
	}
	out := make([]partOffset, k)
	for i := range out {
		out[i].P = d.count()
		off := d.uvarint()
		if off > math.MaxInt64 {
			d.fail("offset")
		}
		out[i].Offset = int64(off)
	}
	return out
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
