package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// The Atlas publish body (asl.md §3.5):
//
//	{"tags": {common tags}, "metrics": [{"tags": {...}, "timestamp": ms, "value": v}, ...]}
//
// value may be a number or a string ("NaN", "Infinity", or a number);
// "start" and "values" are legacy spellings of timestamp and value, and
// "values" may also be an array (its first element is the value). Unknown
// fields are ignored. Keys may come in any order.
//
// The decoder scans the body once and allocates nothing per datapoint in
// the steady state: strings are borrowed from the body (tags.BorrowString)
// unless they hold escapes, and tags, metrics and unescaped strings live in
// per-request arenas that are pooled.

// maxDepth bounds the nesting of values the decoder skips.
const maxDepth = 64

// metric is one decoded datapoint; its tags are raw[start:end] until merged.
// With a ref cache, tags of a known series are not decoded: ref is set,
// and the tags stay the body's text at body[tags0:tags1] (decoded on demand
// by materialize).
type metric struct {
	start, end   int32
	tags0, tags1 int32 // the JSON text of its "tags" object in the body
	t            int64
	v            float64
	key          refKey         // its ref cache key; zero when not computed
	ref          tsdb.SeriesRef // the cached ref of its series; 0 on a miss
	hasT, hasV   bool
	overflow     bool // more tags than the rules allow: the rest were not kept
	dirty        bool // a tag holds a character the rules do not allow
	parsed       bool // raw[start:end] holds its tags
}

// publishDecoder holds a request's decoded body.
type publishDecoder struct {
	b           []byte
	i           int
	class       *[256]uint8 // the rules' byte classes (rules.go)
	common      []tags.Tag
	dirtyCommon bool
	raw         []tags.Tag
	metrics     []metric
	unesc       []byte // unescaped strings

	maxTags    int
	maxMetrics int

	// refs, when set, is the ref cache: metrics whose tag text it knows are
	// not decoded. Lookups during the scan need the common tags' key, so
	// they happen once the common tags were seen; a body that sends them
	// after its metrics is keyed after the scan (keyAll).
	refs      *refCache
	common0   int              // where the common tags' text starts, -1 before seen
	commonKey refKey           // the ref cache context of the common tags' text
	noCache   bool             // more than one common "tags": the cache is not used
	keys      []refKey         // scratch of keyAll: the metrics' keys,
	refv      []tsdb.SeriesRef // their refs,
	order     []int32          // and refCache.lookupAll's order
}

func (d *publishDecoder) reset(body []byte, rules *Rules, maxMetrics int, refs *refCache) {
	d.b, d.i, d.class = body, 0, &rules.scanClass
	d.dirtyCommon = false
	d.refs, d.common0, d.noCache = refs, -1, false
	if refs != nil {
		d.commonKey = refs.context(nil)
	}
	maxTags := rules.MaxTags
	d.common, d.raw, d.metrics, d.unesc = d.common[:0], d.raw[:0], d.metrics[:0], d.unesc[:0]
	d.maxTags, d.maxMetrics = maxTags, maxMetrics
}

// syntaxError is a malformed body.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.off, e.msg)
}

// tooManyError is a body with more datapoints than allowed.
type tooManyError struct{ max int }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("more than %d datapoints in one request", e.max)
}

func (d *publishDecoder) fail(msg string) error { return &syntaxError{off: d.i, msg: msg} }

func (d *publishDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (d *publishDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *publishDecoder) expect(c byte) error {
	if d.peek() != c {
		if d.i >= len(d.b) {
			return d.fail(fmt.Sprintf("unexpected end, expected '%c'", c))
		}
		return d.fail(fmt.Sprintf("expected '%c', found '%c'", c, d.b[d.i]))
	}
	d.i++
	return nil
}

// decode parses the whole body.
func (d *publishDecoder) decode() error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return d.end()
	}
	for {
		key, _, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		switch key {
		case "tags":
			d.ws()
			at := d.i
			if d.common, _, d.dirtyCommon, err = d.tagMap(d.common); err != nil {
				return err
			}
			if d.refs != nil {
				// A second common "tags" merges into the first: its text
				// alone is not the context, and such bodies go uncached.
				d.noCache = d.noCache || d.common0 >= 0
				d.common0 = at
				d.commonKey = d.refs.context(d.b[at:d.i])
			}
		case "metrics":
			if err := d.metricList(); err != nil {
				return err
			}
		default:
			if err := d.skip(0); err != nil {
				return err
			}
		}
		if done, err := d.next('}'); err != nil || done {
			if err == nil {
				err = d.end()
			}
			return err
		}
	}
}

// next consumes ',' (false) or the closing byte (true).
func (d *publishDecoder) next(closing byte) (bool, error) {
	switch d.peek() {
	case ',':
		d.i++
		return false, nil
	case closing:
		d.i++
		return true, nil
	case 0:
		return false, d.fail(fmt.Sprintf("unexpected end, expected ',' or '%c'", closing))
	}
	return false, d.fail(fmt.Sprintf("expected ',' or '%c'", closing))
}

func (d *publishDecoder) end() error {
	if d.peek() != 0 {
		return d.fail("data after the end of the document")
	}
	return nil
}

func (d *publishDecoder) metricList() error {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		if len(d.metrics) == d.maxMetrics {
			return &tooManyError{max: d.maxMetrics}
		}
		if err := d.metric(); err != nil {
			return err
		}
		if done, err := d.next(']'); err != nil || done {
			return err
		}
	}
}

func (d *publishDecoder) metric() error {
	if err := d.expect('{'); err != nil {
		return err
	}
	m := metric{start: int32(len(d.raw)), end: int32(len(d.raw)), parsed: true}
	if d.peek() == '}' {
		d.i++
		d.metrics = append(d.metrics, m)
		return nil
	}
	if err := d.metricFields(&m); err != nil {
		// Tags skipped for the ref cache come before the error: a decoder
		// without the cache would have failed on them first.
		if err2 := d.materialize(&m); err2 != nil {
			return err2
		}
		return err
	}
	d.metrics = append(d.metrics, m)
	return nil
}

// metricFields decodes the fields of a metric object into m, up to and
// including its closing brace.
func (d *publishDecoder) metricFields(m *metric) error {
	for {
		key, _, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		switch key {
		case "tags":
			// A repeated "tags" key replaces the earlier one, which must
			// still be well formed.
			if err := d.materialize(m); err != nil {
				return err
			}
			d.ws()
			at := d.i
			d.raw = d.raw[:m.start]
			m.end, m.key, m.overflow, m.dirty = m.start, refKey{}, false, false
			if d.refs != nil && !d.noCache {
				if end := d.objectEnd(); end > 0 {
					// Fast path: the text is only looked up in the ref
					// cache, after the scan, all lookups together (keyAll);
					// only misses are decoded.
					d.i = end
					m.tags0, m.tags1, m.parsed = int32(at), int32(end), false
					if d.common0 >= 0 {
						m.key = d.refs.key(d.commonKey, d.b[at:end])
					}
					break
				}
			}
			if err := d.metricTags(m); err != nil {
				return err
			}
		case "timestamp", "start":
			if m.t, err = d.timestamp(); err != nil {
				return err
			}
			m.hasT = true
		case "value", "values":
			if m.v, err = d.value(0); err != nil {
				return err
			}
			m.hasV = true
		default:
			if err := d.skip(0); err != nil {
				return err
			}
		}
		if done, err := d.next('}'); err != nil || done {
			return err
		}
	}
}

// metricTags decodes the "tags" object of m at d.i into d.raw.
func (d *publishDecoder) metricTags(m *metric) error {
	at := d.i
	start := len(d.raw)
	raw, n, dirty, err := d.tagMap(d.raw)
	d.raw = raw
	if err != nil {
		return err
	}
	m.start, m.end = int32(start), int32(len(d.raw))
	m.overflow = n > len(d.raw)-start
	m.dirty, m.parsed = dirty, true
	m.tags0, m.tags1 = int32(at), int32(d.i)
	return nil
}

// materialize decodes the tags of m if the scan skipped them, from their
// text in the body. It leaves d.i where it was.
func (d *publishDecoder) materialize(m *metric) error {
	if m.parsed {
		return nil
	}
	i := d.i
	d.i = int(m.tags0)
	err := d.metricTags(m)
	d.i = i
	return err
}

// materializeAll decodes the skipped tags of every metric, in order, and
// returns the first error: called when the scan failed, whose own error
// comes after all of them.
func (d *publishDecoder) materializeAll() error {
	for i := range d.metrics {
		if err := d.materialize(&d.metrics[i]); err != nil {
			return err
		}
	}
	return nil
}

// keyAll finishes decoding with the ref cache: it keys the metrics whose
// common tags came after them, looks every key up at once (grouped by
// stripe, so that one lock covers many lookups and their cache misses
// overlap), and decodes the tags of the misses. With noCache every metric
// is decoded and none is keyed.
func (d *publishDecoder) keyAll() error {
	if d.refs == nil {
		return nil
	}
	for i := range d.metrics {
		m := &d.metrics[i]
		switch {
		case d.noCache:
			m.key = refKey{}
		case m.key == (refKey{}) && m.tags1 > m.tags0:
			m.key = d.refs.key(d.commonKey, d.b[m.tags0:m.tags1])
		}
	}
	if !d.noCache {
		d.keys, d.refv = d.keys[:0], resize(d.refv, len(d.metrics))
		for i := range d.metrics {
			d.keys = append(d.keys, d.metrics[i].key)
		}
		d.order = d.refs.lookupAll(d.keys, d.refv, d.order)
		for i := range d.metrics {
			d.metrics[i].ref = d.refv[i]
		}
	}
	for i := range d.metrics {
		m := &d.metrics[i]
		if m.ref == 0 {
			if err := d.materialize(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// objectEnd returns the end of the JSON object at d.i (past its closing
// brace) without decoding it, or -1. It checks no syntax: its result is
// only used to look the text up in the ref cache, where only text that
// decoded and passed the rules is found.
func (d *publishDecoder) objectEnd() int {
	b := d.b
	i := d.i
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	// Fast path: a flat object of strings without escapes.
	if end, ok := flatObjectEnd(b, i); ok {
		return end
	}
	// Slow path: escapes, nesting, or the body's last bytes.
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i = stringEnd(b, i+1); i < len(b) && b[i] == '\\'; i = stringEnd(b, i+2) {
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// flatObjectEnd finds the end of the JSON object at b[i] ('{') eight bytes
// at a time and without a branch per string: per word it finds the quotes
// and closing braces, computes which bytes are inside strings from the
// running parity of quotes, and stops at the first closing brace outside
// them. It gives up (false) on any byte that could escape or nest
// (\\ [ ] { and '|', which shares their masks) before the end, and on the
// last bytes of b; objectEnd then scans byte by byte. Tag text is mostly
// short strings, and a scan that branched at each one was 15-20 % of the
// server's CPU on the standard workload.
func flatObjectEnd(b []byte, i int) (int, bool) {
	const low7, ones = 0x7f7f7f7f7f7f7f7f, 0x0101010101010101
	// eq returns 0x80 in each byte of w equal to c, exactly (no carries
	// between bytes).
	eq := func(w uint64, c byte) uint64 {
		x := w ^ (uint64(c) * ones)
		return ^(((x & low7) + low7) | x | low7)
	}
	// gather moves the top bit of each byte to bit k for byte k.
	gather := func(m uint64) uint64 { return ((m >> 7) * 0x0102040810204080) >> 56 }
	var inStr uint64 // 0xff inside a string at the end of the last word
	for j := i + 1; j+8 <= len(b); j += 8 {
		w := binary.LittleEndian.Uint64(b[j:])
		y := w & (0xdf * ones) // '{' '|' '}' fold onto '[' '\\' ']'
		q := gather(eq(w, '"'))
		c := gather(eq(w, '}'))
		special := gather(eq(y, '[') | eq(y, '\\') | eq(w, ']'))
		// Bit k of p: the parity of the quotes in bytes 0..k.
		p := q ^ q<<1
		p ^= p << 2
		p ^= p << 4
		p = (p ^ inStr) & 0xff
		if end := c &^ p; end != 0 {
			k := bits.TrailingZeros64(end)
			if special&(1<<k-1) != 0 {
				return 0, false
			}
			return j + k + 1, true
		}
		if special != 0 {
			return 0, false
		}
		inStr = -(p >> 7) & 0xff
	}
	return 0, false
}

// stringEnd returns the index of the first '"' or '\\' in b from i on, or
// len(b). Eight bytes at a time: tag text is mostly inside strings, and
// this is most of the ref cache's scan.
func stringEnd(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q, e := w^('"'*ones), w^('\\'*ones)
		// The lowest flagged byte of each is exact (only bytes above a zero
		// byte can be flagged falsely), so the lowest of both is the first.
		if m := ((q - ones) &^ q & highs) | ((e - ones) &^ e & highs); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b) && b[i] != '"' && b[i] != '\\'; i++ {
	}
	return i
}

// tagMap appends the entries of a JSON object of strings to dst. It keeps
// at most maxTags+1 of them (one more is enough to reject the datapoint)
// and returns how many there were, and whether any holds a character the
// rules do not allow. null is an empty map.
func (d *publishDecoder) tagMap(dst []tags.Tag) ([]tags.Tag, int, bool, error) {
	if d.peek() == 'n' {
		return dst, 0, false, d.literal("null")
	}
	if err := d.expect('{'); err != nil {
		return dst, 0, false, err
	}
	if d.peek() == '}' {
		d.i++
		return dst, 0, false, nil
	}
	n, dirty := 0, false
	for {
		k, kClean, err := d.str()
		if err != nil {
			return dst, n, dirty, err
		}
		if err := d.expect(':'); err != nil {
			return dst, n, dirty, err
		}
		var v string
		vClean := true
		switch d.peek() {
		case '"':
			if v, vClean, err = d.str(); err != nil {
				return dst, n, dirty, err
			}
		case 'n':
			// null is no value at all: storing it as the string "null"
			// would make up a tag.
			return dst, n, dirty, d.fail(fmt.Sprintf("tag %q: null is not a value; omit the tag or send a string", clip(k)))
		default:
			// A number or literal where a string belongs: keep its text, as
			// lenient Atlas clients send numeric tag values.
			start := d.i
			if err := d.skip(maxDepth); err != nil {
				return dst, n, dirty, err
			}
			v, vClean = tags.BorrowString(d.b[start:d.i]), false
		}
		dirty = dirty || !kClean || !vClean
		if n <= d.maxTags {
			dst = append(dst, tags.Tag{Key: k, Value: v})
		}
		n++
		if done, err := d.next('}'); err != nil || done {
			return dst, n, dirty, err
		}
	}
}

// str reads a string. Without escapes it is borrowed from the body. It
// also reports whether the string holds only characters the rules allow:
// the scan classifies every byte anyway. Control characters are not
// refused here (JSON forbids them raw): tag characters are checked by the
// rules, and other strings are ignored.
func (d *publishDecoder) str() (string, bool, error) {
	if err := d.expect('"'); err != nil {
		return "", false, err
	}
	start := d.i
	class := d.class
	i := start
	// Fast path: allowed characters up to the closing quote.
	for i < len(d.b) && class[d.b[i]] == classTag {
		i++
	}
	clean := true
	for i < len(d.b) {
		switch class[d.b[i]] {
		case classQuote:
			d.i = i + 1
			return tags.BorrowString(d.b[start:i]), clean, nil
		case classEscape:
			d.i = i
			s, err := d.escapedStr(start)
			return s, false, err
		case classOther:
			clean = false
		}
		i++
	}
	d.i = i
	return "", false, d.fail("unterminated string")
}

// escapedStr finishes a string with escapes, unescaping it into d.unesc.
func (d *publishDecoder) escapedStr(start int) (string, error) {
	from := len(d.unesc)
	d.unesc = append(d.unesc, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			// Bytes already in d.unesc are never modified; a later append
			// that grows it copies, and this string keeps the old array.
			return tags.BorrowString(d.unesc[from:]), nil
		case c != '\\':
			d.unesc = append(d.unesc, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			break
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			d.unesc = append(d.unesc, e)
		case 'b':
			d.unesc = append(d.unesc, '\b')
		case 'f':
			d.unesc = append(d.unesc, '\f')
		case 'n':
			d.unesc = append(d.unesc, '\n')
		case 'r':
			d.unesc = append(d.unesc, '\r')
		case 't':
			d.unesc = append(d.unesc, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.fail("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					d.i += 2
					if lo, ok := d.hex4(); ok {
						r2 = utf16.DecodeRune(r, lo)
					}
				}
				r = r2
			}
			d.unesc = utf8.AppendRune(d.unesc, r)
		default:
			return "", d.fail("invalid escape")
		}
	}
	return "", d.fail("unterminated string")
}

func (d *publishDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(tags.BorrowString(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(v), true
}

// numberEnd returns the end of the number starting at d.i.
func (d *publishDecoder) numberEnd() int {
	j := d.i
	for j < len(d.b) {
		switch c := d.b[j]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			j++
		default:
			return j
		}
	}
	return j
}

// timestamp reads milliseconds: an integer (or a float, truncated).
func (d *publishDecoder) timestamp() (int64, error) {
	if d.peek() == '"' {
		s, _, err := d.str()
		if err != nil {
			return 0, err
		}
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, d.fail("timestamp is not an integer")
		}
		return t, nil
	}
	end := d.numberEnd()
	num := d.b[d.i:end]
	// Fast path: a plain non-negative integer.
	var t int64
	ok := len(num) > 0 && len(num) < 19
	for _, c := range num {
		if c < '0' || c > '9' {
			ok = false
			break
		}
		t = t*10 + int64(c-'0')
	}
	if !ok {
		f, err := strconv.ParseFloat(tags.BorrowString(num), 64)
		if err != nil || math.IsNaN(f) || math.Abs(f) > 1<<62 {
			return 0, d.fail("invalid timestamp")
		}
		t = int64(f)
	}
	d.i = end
	return t, nil
}

// value reads a datapoint value: a number, a string holding one ("NaN",
// "Infinity"), null (NaN) or, for legacy "values", an array whose first
// element is the value.
func (d *publishDecoder) value(depth int) (float64, error) {
	switch d.peek() {
	case '"':
		s, _, err := d.str()
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, d.fail(fmt.Sprintf("value %q is not a number", s))
		}
		return v, nil
	case 'n':
		return math.NaN(), d.literal("null")
	case '[':
		if depth > 0 {
			return 0, d.fail("nested value arrays")
		}
		d.i++
		v := math.NaN()
		first := true
		if d.peek() == ']' {
			d.i++
			return v, nil
		}
		for {
			x, err := d.value(depth + 1)
			if err != nil {
				return 0, err
			}
			if first {
				v, first = x, false
			}
			if done, err := d.next(']'); err != nil || done {
				return v, err
			}
		}
	}
	end := d.numberEnd()
	num := d.b[d.i:end]
	// Fast path: an integer of up to 15 digits converts exactly.
	if n := len(num); n > 0 && n <= 15 {
		var x int64
		neg := num[0] == '-'
		digits := num
		if neg {
			digits = num[1:]
		}
		ok := len(digits) > 0
		for _, c := range digits {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			x = x*10 + int64(c-'0')
		}
		if ok {
			d.i = end
			if neg {
				return -float64(x), nil
			}
			return float64(x), nil
		}
	}
	v, err := strconv.ParseFloat(tags.BorrowString(num), 64)
	if err != nil || end == d.i {
		return 0, d.fail("invalid number")
	}
	d.i = end
	return v, nil
}

func (d *publishDecoder) literal(lit string) error {
	if !strings.HasPrefix(tags.BorrowString(d.b[d.i:]), lit) {
		return d.fail("invalid literal")
	}
	d.i += len(lit)
	return nil
}

// skip skips any value, nested at most maxDepth deep.
func (d *publishDecoder) skip(depth int) error {
	if depth > maxDepth {
		return d.fail("nested too deeply")
	}
	switch d.peek() {
	case '"':
		_, _, err := d.str()
		return err
	case '{', '[':
		closing := byte('}')
		if d.b[d.i] == '[' {
			closing = ']'
		}
		d.i++
		if d.peek() == closing {
			d.i++
			return nil
		}
		for {
			if closing == '}' {
				if _, _, err := d.str(); err != nil {
					return err
				}
				if err := d.expect(':'); err != nil {
					return err
				}
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			if done, err := d.next(closing); err != nil || done {
				return err
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case 0:
		return d.fail("unexpected end")
	}
	end := d.numberEnd()
	if end == d.i {
		return d.fail(fmt.Sprintf("unexpected '%c'", d.b[d.i]))
	}
	if _, err := strconv.ParseFloat(tags.BorrowString(d.b[d.i:end]), 64); err != nil {
		return d.fail("invalid number")
	}
	d.i = end
	return nil
}

// sortTags sorts a metric's own tags by key in place (an insertion sort:
// there are a handful, and most comparisons are settled by the first byte)
// and drops duplicate keys, the later winning, as tags.Set.Normalize does.
func sortTags(ts []tags.Tag) []tags.Tag {
	for i := 1; i < len(ts); i++ {
		t := ts[i]
		j := i
		for j > 0 && keyLess(t.Key, ts[j-1].Key) {
			ts[j] = ts[j-1]
			j--
		}
		ts[j] = t
	}
	out := ts[:min(len(ts), 1)]
	for _, t := range ts[min(len(ts), 1):] {
		if t.Key == out[len(out)-1].Key {
			out[len(out)-1] = t // the later occurrence, kept in order by the stable sort
			continue
		}
		out = append(out, t)
	}
	return out
}

func keyLess(a, b string) bool {
	if len(a) > 0 && len(b) > 0 && a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

// merge builds the tag set of metric m into dst: its own tags, sorted,
// over the (sorted) common tags, its own winning on equal keys.
func (d *publishDecoder) merge(dst []tags.Tag, m *metric) []tags.Tag {
	own := sortTags(d.raw[m.start:m.end])
	common := d.common
	i, j := 0, 0
	for i < len(own) || j < len(common) {
		switch {
		case j == len(common) || (i < len(own) && own[i].Key < common[j].Key):
			dst = append(dst, own[i])
			i++
		case i == len(own) || common[j].Key < own[i].Key:
			dst = append(dst, common[j])
			j++
		default: // same key: the metric's own wins
			dst = append(dst, own[i])
			i++
			j++
		}
	}
	return dst
}

// clip shortens a key echoed in a message.
func clip(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:120] + "…"
}
