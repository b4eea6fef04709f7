package tags

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
)

// Tag is one key/value pair of a time series' identity.
type Tag struct {
	Key   string
	Value string
}

// Set is the identity of a time series: its tags sorted by key, keys unique.
// A Set is a value: functions that return a new Set never modify their input.
type Set []Tag

// NameKey is the tag that names a metric. Every stored series has it.
const NameKey = "name"

// ErrDecode marks a malformed encoded tag set.
var ErrDecode = errors.New("tags: malformed encoding")

// New builds a Set from alternating keys and values. Later duplicates of a key
// win. It panics on an odd number of arguments: that is a programming error.
func New(kv ...string) Set {
	if len(kv)%2 != 0 {
		panic("BUG: tags.New needs key/value pairs")
	}
	s := make(Set, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		s = append(s, Tag{kv[i], kv[i+1]})
	}
	return s.Normalize()
}

// FromMap builds a Set from a map.
func FromMap(m map[string]string) Set {
	s := make(Set, 0, len(m))
	for k, v := range m {
		s = append(s, Tag{k, v})
	}
	slices.SortFunc(s, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	return s
}

// Normalize sorts s in place by key and removes duplicate keys, keeping the
// last occurrence (so per-metric tags listed after common tags override them).
// It returns the normalized slice, which shares s's backing array.
func (s Set) Normalize() Set {
	if len(s) < 2 {
		return s
	}
	// Stable so that, among equal keys, input order is kept and the last wins.
	slices.SortStableFunc(s, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	out := s[:1]
	for _, t := range s[1:] {
		if t.Key == out[len(out)-1].Key {
			out[len(out)-1] = t
			continue
		}
		out = append(out, t)
	}
	return out
}

// Get returns the value of key and whether it is present.
func (s Set) Get(key string) (string, bool) {
	// Sets are small (Atlas caps them at 30 tags): a linear scan beats binary
	// search up to that size and has no branches that mispredict on order.
	for i := range s {
		if s[i].Key == key {
			return s[i].Value, true
		}
	}
	return "", false
}

// Has reports whether key is present.
func (s Set) Has(key string) bool {
	_, ok := s.Get(key)
	return ok
}

// Name returns the value of the name tag, or "" if absent.
func (s Set) Name() string {
	v, _ := s.Get(NameKey)
	return v
}

// Equal reports whether a and b hold the same tags.
func (s Set) Equal(o Set) bool {
	return slices.Equal(s, o)
}

// Map returns the tags as a new map.
func (s Set) Map() map[string]string {
	m := make(map[string]string, len(s))
	for _, t := range s {
		m[t.Key] = t.Value
	}
	return m
}

// Clone returns a deep copy whose strings share no memory with s. Callers
// use it to keep tags that were borrowed from a request buffer.
func (s Set) Clone() Set {
	if s == nil {
		return nil
	}
	n := 0
	for _, t := range s {
		n += len(t.Key) + len(t.Value)
	}
	// One allocation for all strings: the set's strings live and die together.
	var b strings.Builder
	b.Grow(n)
	for _, t := range s {
		b.WriteString(t.Key)
		b.WriteString(t.Value)
	}
	all := b.String()
	out := make(Set, len(s))
	off := 0
	for i, t := range s {
		out[i].Key = all[off : off+len(t.Key)]
		off += len(t.Key)
		out[i].Value = all[off : off+len(t.Value)]
		off += len(t.Value)
	}
	return out
}

// String renders the set as {k1=v1, k2=v2}.
func (s Set) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Key)
		b.WriteByte('=')
		b.WriteString(t.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// AppendTo appends the canonical encoding of s to dst: for each tag in key
// order, uvarint(len(key)) key uvarint(len(value)) value. Equal sets have
// equal encodings, so the encoding is usable as a map key and for hashing.
func (s Set) AppendTo(dst []byte) []byte {
	for _, t := range s {
		dst = binary.AppendUvarint(dst, uint64(len(t.Key)))
		dst = append(dst, t.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(t.Value)))
		dst = append(dst, t.Value...)
	}
	return dst
}

// Decode parses a canonical encoding produced by AppendTo. The returned
// strings are copies; src may be reused afterwards.
func Decode(src []byte) (Set, error) {
	// Copy once so that all strings share one allocation.
	all := string(src)
	var s Set
	for off := 0; off < len(all); {
		k, n, err := decodeString(all, off)
		if err != nil {
			return nil, err
		}
		off = n
		v, n, err := decodeString(all, off)
		if err != nil {
			return nil, err
		}
		off = n
		if len(s) > 0 && s[len(s)-1].Key >= k {
			return nil, ErrDecode
		}
		s = append(s, Tag{k, v})
	}
	return s, nil
}

// AppendSortKey appends to dst a key of the canonical encoding enc whose
// byte order is the order of the sets (tag by tag, key then value, a set
// before the longer sets it starts): each key and value followed by a NUL
// byte. Sorting many sets by these keys compares bytes once rather than
// tag by tag. Keys and values holding a NUL byte may sort slightly out of
// that order. It returns ErrDecode for a malformed encoding.
func AppendSortKey(dst, enc []byte) ([]byte, error) {
	for off := 0; off < len(enc); {
		l, n := binary.Uvarint(enc[off:])
		if n <= 0 || uint64(len(enc)-off-n) < l {
			return dst, ErrDecode
		}
		off += n
		dst = append(dst, enc[off:off+int(l)]...)
		dst = append(dst, 0)
		off += int(l)
	}
	return dst, nil
}

// EqualEncoded reports whether enc (a canonical encoding) encodes s. It does
// not allocate; the store uses it to confirm a hash match.
func (s Set) EqualEncoded(enc []byte) bool {
	off := 0
	for _, t := range s {
		var ok bool
		if off, ok = matchString(enc, off, t.Key); !ok {
			return false
		}
		if off, ok = matchString(enc, off, t.Value); !ok {
			return false
		}
	}
	return off == len(enc)
}

// ValueEncoded returns the value of key inside a canonical encoding without
// decoding the whole set or allocating. The result aliases enc.
func ValueEncoded(enc []byte, key string) ([]byte, bool) {
	off := 0
	for off < len(enc) {
		kl, n := binary.Uvarint(enc[off:])
		if n <= 0 || uint64(len(enc)-off-n) < kl {
			return nil, false
		}
		k := enc[off+n : off+n+int(kl)]
		off += n + int(kl)
		vl, n := binary.Uvarint(enc[off:])
		if n <= 0 || uint64(len(enc)-off-n) < vl {
			return nil, false
		}
		v := enc[off+n : off+n+int(vl)]
		off += n + int(vl)
		if string(k) == key {
			return v, true
		}
	}
	return nil, false
}

func decodeString(all string, off int) (string, int, error) {
	l, n := binary.Uvarint([]byte(all[off:min(off+binary.MaxVarintLen64, len(all))]))
	if n <= 0 || uint64(len(all)-off-n) < l {
		return "", 0, ErrDecode
	}
	start := off + n
	return all[start : start+int(l)], start + int(l), nil
}

func matchString(enc []byte, off int, want string) (int, bool) {
	if off >= len(enc) {
		return 0, false
	}
	// Fast path: lengths under 128 are one varint byte.
	l, n := uint64(enc[off]), 1
	if l >= 0x80 {
		l, n = binary.Uvarint(enc[off:])
		if n <= 0 {
			return 0, false
		}
	}
	if l != uint64(len(want)) || len(enc)-off-n < len(want) {
		return 0, false
	}
	start := off + n
	if string(enc[start:start+len(want)]) != want {
		return 0, false
	}
	return start + len(want), true
}
