package spanstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-dev/sextant/tracing"
)

// GetTrace implements tracing.Reader.
func (s *Store) GetTrace(ctx context.Context, id tracing.TraceID) (_ tracing.Trace, err error) {
	if s.closed.Load() {
		return tracing.Trace{}, tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return tracing.Trace{}, err
	}
	defer s.trap.Recover(&err)
	entries, err := s.traceEntries(id)
	if err != nil {
		return tracing.Trace{}, err
	}
	if len(entries) == 0 {
		return tracing.Trace{}, tracing.ErrNotFound
	}
	tr := tracing.Trace{ID: id}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return tracing.Trace{}, err
		}
		if tr.Spans, err = s.readSpans(tr.Spans, e.seq, e.spans); err != nil {
			return tracing.Trace{}, err
		}
	}
	if len(tr.Spans) == 0 {
		return tracing.Trace{}, tracing.ErrNotFound // its blocks expired a moment ago
	}
	sort.SliceStable(tr.Spans, func(i, j int) bool { return tr.Spans[i].Start < tr.Spans[j].Start })
	// A span written twice (a client's retry; a cluster store node
	// applies the log once, with marks) is stored twice and shown once.
	tr.Spans = tracing.DedupSpans(tr.Spans)
	return tr, nil
}

// traceEntries returns where a trace's spans are, block by block.
func (s *Store) traceEntries(id tracing.TraceID) ([]traceEntry, error) {
	prefix := append([]byte{kindTrace}, id[:]...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper(prefix)})
	if err != nil {
		return nil, err
	}
	var out []traceEntry
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 1+16+8 {
			continue
		}
		e, err := decodeTraceEntry(binary.BigEndian.Uint64(k[17:]), it.Value())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("trace %s: %w", id, err)
		}
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("read trace %s: %w", id, err)
	}
	return out, nil
}

// readSpans appends the spans at the given indexes of block seq. A block
// removed by retention meanwhile reads as empty.
func (s *Store) readSpans(dst []tracing.Span, seq uint64, idx []int) ([]tracing.Span, error) {
	v, closer, err := s.db.Get(blockKey(seq))
	if err == pebble.ErrNotFound {
		return dst, nil
	}
	if err != nil {
		return dst, fmt.Errorf("read block %d: %w", seq, err)
	}
	defer closer.Close()
	blk, err := decodeBlock(v)
	if err != nil {
		return dst, fmt.Errorf("block %d: %w", seq, err)
	}
	for _, i := range idx {
		sp, err := blk.span(i)
		if err != nil {
			return dst, fmt.Errorf("block %d span %d: %w", seq, i, err)
		}
		dst = append(dst, sp)
	}
	return dst, nil
}

// FindTraces implements tracing.Reader. It walks the service's search
// entries newest first, hour by hour: digests decide operation, kind,
// status, start and duration; attribute filters read the candidate spans;
// trace-duration bounds read the trace's entries.
func (s *Store) FindTraces(ctx context.Context, q tracing.Query) (_ []tracing.Trace, err error) {
	if s.closed.Load() {
		return nil, tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return nil, err
	}
	defer s.trap.Recover(&err)
	if q.Limit <= 0 {
		return nil, fmt.Errorf("spanstore: limit %d, want > 0", q.Limit)
	}
	if q.End <= q.Start {
		return nil, nil
	}
	f := finder{s: s, q: q, seen: map[tracing.TraceID]bool{}, blocks: map[uint64]*block{}}
	for _, a := range q.Attributes {
		f.hashes = append(f.hashes, attrHash(a.Key, a.Value))
	}
	var ids []tracing.TraceID
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var key, hi []byte
	for _, h := range s.searchHours(hourOf(q.Start), hourOf(q.End-1)) {
		if len(ids) >= q.Limit {
			break
		}
		if skip, err := f.hourValues(h); err != nil {
			return nil, err
		} else if skip {
			continue // a prefix or regex filter matches no value of the hour
		}
		key = searchPrefix(key[:0], h, q.Service)
		hi = binary.BigEndian.AppendUint64(append(hi[:0], key...), uint64(q.End))
		it.SetBounds(key, hi)
		for it.Last(); it.Valid() && len(ids) < q.Limit; it.Prev() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			minStart, id, seq, ok := parseSearchKeyTail(it.Key())
			if !ok || f.seen[id] {
				continue
			}
			match, err := f.entry(minStart, id, seq, it.Value())
			if err != nil {
				return nil, err
			}
			if match {
				f.seen[id] = true
				ids = append(ids, id)
			}
		}
		if err := it.Error(); err != nil {
			return nil, fmt.Errorf("search %s: %w", q.Service, err)
		}
	}
	out := make([]tracing.Trace, 0, len(ids))
	for _, id := range ids {
		tr, err := s.GetTrace(ctx, id)
		if err == tracing.ErrNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

// finder holds one search's state.
type finder struct {
	s       *Store
	q       tracing.Query
	seen    map[tracing.TraceID]bool
	digests []digest
	cand    []int
	blocks  map[uint64]*block // blocks read for attribute filters, kept for the search
	hashes  []uint64          // bloom hash of each attribute filter
	// For prefix and regex filters, in the hour being searched: the hashes
	// of the values they match, when the dictionary lists them all.
	values [][]uint64
	listed []bool
}

// hourValues looks up the prefix and regex filters' values in hour's
// dictionary, reporting whether one of them matches nothing there.
func (f *finder) hourValues(h uint32) (skip bool, err error) {
	if f.values == nil {
		f.values, f.listed = make([][]uint64, len(f.q.Attributes)), make([]bool, len(f.q.Attributes))
	}
	for i := range f.q.Attributes {
		a := &f.q.Attributes[i]
		f.values[i], f.listed[i] = nil, false
		if a.Match == tracing.MatchExact || derivedKeys[a.Key] {
			continue
		}
		if f.values[i], f.listed[i], err = f.s.dictValues(h, a); err != nil {
			return false, err
		}
		if f.listed[i] && len(f.values[i]) == 0 {
			return true, nil
		}
	}
	return false, nil
}

// derivedKeys are filter keys that are not stored attributes, so not in
// the blooms.
var derivedKeys = map[string]bool{"span.kind": true, "otel.status_code": true, "error": true, "otel.scope.name": true, "service.name": true}

// entry reports whether one search entry has a matching span and its
// trace satisfies the trace-duration bounds.
func (f *finder) entry(minStart int64, id tracing.TraceID, seq uint64, v []byte) (bool, error) {
	q := &f.q
	var err error
	var bloom []byte
	if f.digests, bloom, err = decodeDigests(f.digests[:0], v, minStart); err != nil {
		return false, fmt.Errorf("search entry of trace %s: %w", id, err)
	}
	f.cand = f.cand[:0]
	for i := range f.digests {
		d := &f.digests[i]
		switch {
		case d.start < q.Start || d.start >= q.End:
		case q.Operation != "" && d.op != q.Operation:
		case q.Kind != tracing.SpanKindUnspecified && d.kind != q.Kind:
		case q.Status == tracing.StatusError && d.status != tracing.StatusError:
		case q.Status == tracing.StatusOK && d.status == tracing.StatusError:
		case q.MinDuration > 0 && d.dur < int64(q.MinDuration):
		case q.MaxDuration > 0 && d.dur > int64(q.MaxDuration):
		default:
			f.cand = append(f.cand, d.index)
		}
	}
	if len(f.cand) == 0 {
		return false, nil
	}
	for i := range q.Attributes {
		// Filters on stored attributes: the bloom rules most entries out
		// without reading their block, for exact filters, and for prefix
		// and regex filters whose matching values the dictionary lists.
		a := &q.Attributes[i]
		switch {
		case derivedKeys[a.Key]:
		case a.Match == tracing.MatchExact:
			if !bloomHas(bloom, f.hashes[i]) {
				return false, nil
			}
		case f.listed[i]:
			found := false
			for _, h := range f.values[i] {
				if bloomHas(bloom, h) {
					found = true
					break
				}
			}
			if !found {
				return false, nil
			}
		}
	}
	if len(q.Attributes) > 0 {
		ok, err := f.attributes(seq)
		if !ok || err != nil {
			return false, err
		}
	}
	if q.MinTraceDuration > 0 || q.MaxTraceDuration > 0 {
		entries, err := f.s.traceEntries(id)
		if err != nil {
			return false, err
		}
		lo, hi := int64(1<<62), int64(0)
		for _, e := range entries {
			lo, hi = min(lo, e.minStart), max(hi, e.end)
		}
		d := time.Duration(hi - lo)
		if (q.MinTraceDuration > 0 && d < q.MinTraceDuration) || (q.MaxTraceDuration > 0 && d > q.MaxTraceDuration) {
			return false, nil
		}
	}
	return true, nil
}

// attributes reports whether a candidate span satisfies every attribute
// filter.
func (f *finder) attributes(seq uint64) (bool, error) {
	blk, ok := f.blocks[seq]
	if !ok {
		v, closer, err := f.s.db.Get(blockKey(seq))
		if err == pebble.ErrNotFound {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read block %d: %w", seq, err)
		}
		blk, err = decodeBlock(bytes.Clone(v))
		closer.Close()
		if err != nil {
			return false, fmt.Errorf("block %d: %w", seq, err)
		}
		if len(f.blocks) > 64 {
			clear(f.blocks) // bound the memory of one search
		}
		f.blocks[seq] = blk
	}
	for _, i := range f.cand {
		sp, err := blk.span(i)
		if err != nil {
			return false, fmt.Errorf("block %d span %d: %w", seq, i, err)
		}
		if matchAll(&sp, f.q.Attributes) {
			return true, nil
		}
	}
	return false, nil
}

func matchAll(sp *tracing.Span, fs []tracing.AttrFilter) bool {
	for i := range fs {
		if !matchOne(sp, &fs[i]) {
			return false
		}
	}
	return true
}

func matchOne(sp *tracing.Span, f *tracing.AttrFilter) bool {
	switch f.Key {
	case "span.kind":
		return test(f, sp.Kind.String())
	case "otel.status_code":
		return test(f, statusText(sp.Status))
	case "error":
		return test(f, strconv.FormatBool(sp.Status == tracing.StatusError))
	case "otel.scope.name":
		return test(f, sp.ScopeName)
	case "service.name":
		return test(f, sp.Resource.Service)
	}
	for _, set := range [2][]tracing.KeyValue{sp.Attributes, sp.Resource.Attributes} {
		for i := range set {
			if set[i].Key == f.Key && test(f, ValueText(&set[i])) {
				return true
			}
		}
	}
	return false
}

func statusText(c tracing.StatusCode) string {
	switch c {
	case tracing.StatusOK:
		return "OK"
	case tracing.StatusError:
		return "ERROR"
	}
	return ""
}

// ValueText is an attribute's value as text, as filters compare it.
func ValueText(kv *tracing.KeyValue) string {
	switch kv.Type {
	case tracing.ValueBool:
		return strconv.FormatBool(kv.Int != 0)
	case tracing.ValueInt:
		return strconv.FormatInt(kv.Int, 10)
	case tracing.ValueFloat:
		return strconv.FormatFloat(kv.Float, 'g', -1, 64)
	}
	return kv.Str
}

// test compares a value's text with a filter.
func test(f *tracing.AttrFilter, v string) bool {
	switch f.Match {
	case tracing.MatchPrefix:
		return strings.HasPrefix(v, f.Value)
	case tracing.MatchRegex:
		return f.Regex != nil && f.Regex.MatchString(v)
	}
	return v == f.Value
}
