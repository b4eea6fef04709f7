package lib

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
)

// Tag is one dimension of a meter id.
type Tag struct {
	Key   string
	Value string
}

// Id names a meter: a name plus tags. Ids are immutable values; WithTag
// and WithTags return new ids.
type Id struct {
	name string
	tags []Tag // sorted by key, unique keys
	hash uint64
}

// NewId returns an id from a name and alternating tag keys and values.
// A later duplicate key wins; an odd trailing key is ignored.
func NewId(name string, kv ...string) Id {
	tags := make([]Tag, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, Tag{kv[i], kv[i+1]})
	}
	return newId(name, normalize(tags))
}

func newId(name string, tags []Tag) Id {
	h := maphash.String(idSeed, name)
	for _, t := range tags {
		h += pairHash(t.Key, t.Value)
	}
	return Id{name: name, tags: tags, hash: h}
}

// idSeed keys the id hashes of this process; it never changes.
var idSeed = maphash.MakeSeed()

// pairHash hashes one tag. Ids add their tags' hashes, so the hash of a
// tag list does not depend on its order.
func pairHash(k, v string) uint64 {
	return bits.RotateLeft64(maphash.String(idSeed, k), 17) ^ maphash.String(idSeed, v)*0x9e3779b97f4a7c15
}

// kvHash is the hash newId would compute for kv, without building the id.
func kvHash(name string, kv []string) uint64 {
	h := maphash.String(idSeed, name)
	for i := 0; i+1 < len(kv); i += 2 {
		h += pairHash(kv[i], kv[i+1])
	}
	return h
}

// matchesKV reports whether the id is name with exactly the tags of kv
// (given in any order, no duplicate keys).
func (id Id) matchesKV(name string, kv []string) bool {
	if id.name != name || len(kv)/2 != len(id.tags) || len(id.tags) > 64 {
		return false
	}
	var seen uint64
	for i := 0; i+1 < len(kv); i += 2 {
		j := -1
		for x := range id.tags {
			if id.tags[x].Key == kv[i] {
				j = x
				break
			}
		}
		if j < 0 || id.tags[j].Value != kv[i+1] || seen&(1<<j) != 0 {
			return false
		}
		seen |= 1 << j
	}
	return true
}

// equal reports whether two ids are the same.
func (id Id) equal(o Id) bool {
	return id.hash == o.hash && id.name == o.name && slices.Equal(id.tags, o.tags)
}

// Name returns the meter name.
func (id Id) Name() string { return id.name }

// Tags returns a copy of the tags, sorted by key.
func (id Id) Tags() []Tag { return slices.Clone(id.tags) }

// WithTag returns an id with one more tag (replacing a tag with the same key).
func (id Id) WithTag(key, value string) Id {
	tags := make([]Tag, 0, len(id.tags)+1)
	tags = append(tags, id.tags...)
	tags = append(tags, Tag{key, value})
	return newId(id.name, normalize(tags))
}

// WithTags returns an id with more tags from alternating keys and values.
func (id Id) WithTags(kv ...string) Id {
	tags := make([]Tag, 0, len(id.tags)+len(kv)/2)
	tags = append(tags, id.tags...)
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, Tag{kv[i], kv[i+1]})
	}
	return newId(id.name, normalize(tags))
}

// String renders the id as name{k=v,...}.
func (id Id) String() string {
	var b strings.Builder
	b.WriteString(id.name)
	b.WriteByte('{')
	for i, t := range id.tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Key)
		b.WriteByte('=')
		b.WriteString(t.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// compare orders ids by name, then tags.
func (id Id) compare(o Id) int {
	if c := strings.Compare(id.name, o.name); c != 0 {
		return c
	}
	return slices.CompareFunc(id.tags, o.tags, func(a, b Tag) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// normalize sorts tags by key; a later duplicate key wins.
func normalize(tags []Tag) []Tag {
	slices.SortStableFunc(tags, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	out := tags[:0]
	for _, t := range tags {
		if len(out) > 0 && out[len(out)-1].Key == t.Key {
			out[len(out)-1] = t
			continue
		}
		out = append(out, t)
	}
	return out
}
