package ingest

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/sextant-dev/sextant/tsdb"
)

// otlpRefs is the OTLP converter's side of the ref cache (refcache.go):
// the series of a metric datapoint are resolved by a key of what decides
// their tags, so that a known series skips building its tag set (the
// attributes as strings, the sort, the policy's checks) and the store's
// lookup by tags.
//
// Keys. What decides a series' tags is: the resource attributes the
// policy promotes, the scope attributes and the datapoint attributes,
// each in the order sent (Normalize keeps the last of a repeated key, so
// the order counts), then the metric name, the data source type and the
// extra tags the mapping adds (statistic, percentile, quantile): one
// datapoint may make many series (a histogram's count, total, min, max
// and buckets), each with its own key. The policy itself (what is
// promoted, the limits) is fixed for a Handler, as Atlas's rules are. The
// context of a key hashes the attributes' bytes (key, value type and value:
// strings as sent, numbers and booleans by their bits, the other types as
// AsString writes them), computed once per datapoint; the key adds the
// name, type and extra tags, length-prefixed. Two spellings of one series
// (an int 1 and a string "1") are two keys of the same ref. Context bytes
// start with otlpKeyDomain, which no Atlas common-tags text or remote-write
// context starts with, so the protocols' keys never meet.
//
// What is cached: series the store accepted a datapoint of, with no value
// cut to the policy's length (a hit would not count the cut); a value too
// long marks its resource, scope or datapoint uncacheable, decided from
// the value's length alone.
type otlpRefs struct {
	cache *refCache // nil: off
	// Per point of the converter: its key (zero: not cacheable) and the
	// ref it goes to the store by (0: by tags).
	keys []refKey
	sent []tsdb.SeriesRef
	hits int
	// buf holds the context bytes: the resource's (resLen), the scope's
	// (baseLen), then the datapoint's attributes.
	buf             []byte
	resLen, baseLen int
	resOK, baseOK   bool // no value of the resource, or resource and scope, too long
	// The context of the datapoint whose attributes are attrs (valid: ok),
	// zero when not cacheable.
	attrs pcommon.Map
	ok    bool
	ctx   refKey
	suf   []byte // the key bytes after the context
}

// otlpKeyDomain starts every OTLP key context: not the start of a JSON text
// (Atlas's common tags) nor of remote write's context.
const otlpKeyDomain = "\xffotlp\x00"

func (r *otlpRefs) reset(cache *refCache) {
	r.cache = cache
	r.keys, r.sent, r.hits = r.keys[:0], r.sent[:0], 0
	r.ok = false
}

// resource starts the key context of a resource's series; ok says that
// none of its values was cut.
func (r *otlpRefs) resource(policy TagPolicy, m pcommon.Map, ok bool) {
	if r.cache == nil {
		return
	}
	r.buf = append(r.buf[:0], otlpKeyDomain...)
	for k, v := range m.All() {
		if policy.promoted(k) {
			r.buf, ok = appendAttrKey(r.buf, policy, k, v, ok)
		}
	}
	r.buf = append(r.buf, 0) // the end of a list of attributes
	r.resLen, r.resOK = len(r.buf), ok
	r.ok = false
}

// scope continues it with a scope's attributes.
func (r *otlpRefs) scope(policy TagPolicy, m pcommon.Map, ok bool) {
	if r.cache == nil {
		return
	}
	r.buf = r.buf[:r.resLen]
	ok = ok && r.resOK
	for k, v := range m.All() {
		r.buf, ok = appendAttrKey(r.buf, policy, k, v, ok)
	}
	r.buf = append(r.buf, 0)
	r.baseLen, r.baseOK = len(r.buf), ok
	r.ok = false
}

// key returns the key of the series named name of type dst with the extra
// tags extra, of a datapoint with attributes attrs under the current
// resource and scope, or the zero key when it may not be cached.
func (r *otlpRefs) key(policy TagPolicy, name, dst string, attrs pcommon.Map, extra []string) refKey {
	if r.cache == nil || !r.baseOK {
		return refKey{}
	}
	if !r.ok || r.attrs != attrs {
		// Once per datapoint: its series share the attributes.
		ok := true
		r.buf = r.buf[:r.baseLen]
		for k, v := range attrs.All() {
			r.buf, ok = appendAttrKey(r.buf, policy, k, v, ok)
		}
		r.buf = append(r.buf, 0)
		r.attrs, r.ok, r.ctx = attrs, true, refKey{}
		if ok {
			r.ctx = r.cache.context(r.buf)
		}
	}
	if r.ctx == (refKey{}) {
		return refKey{}
	}
	b := appendKeyString(r.suf[:0], name)
	b = appendKeyString(b, dst)
	b = binary.AppendUvarint(b, uint64(len(extra)))
	for _, s := range extra {
		b = appendKeyString(b, s)
	}
	r.suf = b
	return r.cache.key(r.ctx, b)
}

// lookup returns the ref cached for k, or 0.
func (r *otlpRefs) lookup(k refKey) tsdb.SeriesRef {
	if k == (refKey{}) {
		return 0
	}
	return r.cache.get(k)
}

// add records the key of the converter's next point and the ref it is
// sent by (0: by tags).
func (r *otlpRefs) add(k refKey, ref tsdb.SeriesRef) {
	if r.cache == nil {
		return
	}
	r.keys = append(r.keys, k)
	r.sent = append(r.sent, ref)
	if ref != 0 {
		r.hits++
	}
}

// appendAttrKey appends the key bytes of attribute k=v, and reports ok
// unless v would be cut to the policy's length (or ok was false). An
// attribute's bytes are 1, the key with its length, the value's type and
// the value (with its length when it has none of its own), and a list of
// them ends with 0: the bytes of two different lists always differ.
func appendAttrKey(dst []byte, policy TagPolicy, k string, v pcommon.Value, ok bool) ([]byte, bool) {
	dst = append(dst, 1)
	dst = appendKeyString(dst, k)
	t := v.Type()
	dst = append(dst, byte(t))
	switch {
	case t == pcommon.ValueTypeStr:
		s := v.Str()
		return appendKeyString(dst, s), ok && len(s) <= policy.MaxValueBytes
	case t == pcommon.ValueTypeEmpty:
		return dst, ok
	case policy.MaxValueBytes >= 32 && t == pcommon.ValueTypeInt:
		// Fast path: a number's text (at most 24 bytes) is never cut.
		return binary.LittleEndian.AppendUint64(dst, uint64(v.Int())), ok
	case policy.MaxValueBytes >= 32 && t == pcommon.ValueTypeDouble:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Double())), ok
	case policy.MaxValueBytes >= 32 && t == pcommon.ValueTypeBool:
		b := byte(0)
		if v.Bool() {
			b = 1
		}
		return append(dst, b), ok
	}
	// Slow path: maps, slices, bytes (and numbers and booleans under a
	// tiny limit), as the tag's value is made.
	s := v.AsString()
	return appendKeyString(dst, s), ok && len(s) <= policy.MaxValueBytes
}

// appendKeyString appends s with its length first, so that no two lists
// of strings append the same bytes.
func appendKeyString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
