package lib

import (
	"slices"
	"strings"
)

// Tag is one dimension of a meter id.
type Tag struct {
	Key   string
	Value string
}

// Id names a meter: a name plus tags. Ids are immutable values; WithTag and
// WithTags return new ids.
type Id struct {
	name string
	tags []Tag // sorted by key, unique keys
}

// NewId returns an id from a name and alternating tag keys and values. An odd
// trailing key is ignored (and the meter's tags are then what was given).
func NewId(name string, kv ...string) Id {
	tags := make([]Tag, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, Tag{kv[i], kv[i+1]})
	}
	return Id{name: name, tags: normalize(tags)}
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
	return Id{name: id.name, tags: normalize(tags)}
}

// WithTags returns an id with more tags from alternating keys and values.
func (id Id) WithTags(kv ...string) Id {
	tags := make([]Tag, 0, len(id.tags)+len(kv)/2)
	tags = append(tags, id.tags...)
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, Tag{kv[i], kv[i+1]})
	}
	return Id{name: id.name, tags: normalize(tags)}
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

// key is the id's canonical form, used to find its meter.
func (id Id) key() string {
	n := len(id.name)
	for _, t := range id.tags {
		n += len(t.Key) + len(t.Value) + 2
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(id.name)
	for _, t := range id.tags {
		b.WriteByte(0)
		b.WriteString(t.Key)
		b.WriteByte(1)
		b.WriteString(t.Value)
	}
	return b.String()
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
