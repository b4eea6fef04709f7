package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// Rules are the tag validation rules of Atlas's publish API
// (atlas-webapi reference.conf), with its defaults. Failures are reported
// with Atlas's messages.
type Rules struct {
	KeyMin, KeyMax     int    // key length: 2..60
	NameMin, NameMax   int    // length of the name value: 2..255
	ValueMin, ValueMax int    // length of other values: 1..120
	Chars              string // characters allowed in keys and values
	MaxUserTags        int    // tags without a reserved prefix: 20
	MaxTags            int    // all tags: 30
	// Reserved maps a reserved key prefix to the keys allowed with it.
	Reserved map[string][]string

	allowed              [256]bool
	prefixFirst          [256]bool
	reservedKeys         map[string]bool
	reservedPrefixesList []string
}

// NameKey is the tag that names a metric.
const NameKey = "name"

// DefaultRules returns Atlas's defaults.
func DefaultRules() *Rules {
	r := &Rules{
		KeyMin: 2, KeyMax: 60, NameMin: 2, NameMax: 255, ValueMin: 1, ValueMax: 120,
		Chars: "-._A-Za-z0-9^~", MaxUserTags: 20, MaxTags: 30,
		Reserved: map[string][]string{
			"nf.": {"account", "ami", "app", "asg", "cluster", "container", "country", "country.rollup", "job",
				"node", "process", "region", "shard1", "shard2", "stack", "subnet", "task", "vmtype", "vpc", "zone"},
			"atlas.": {"aggr", "dstype", "offset", "legacy"},
		},
	}
	r.Compile()
	return r
}

// Compile prepares the lookup tables; call it after changing the fields.
func (r *Rules) Compile() {
	r.allowed = [256]bool{}
	for i := 0; i < len(r.Chars); i++ {
		c := r.Chars[i]
		// A range like A-Z, as in Atlas's AsciiSet patterns; a leading or
		// trailing - is literal.
		if i+2 < len(r.Chars) && r.Chars[i+1] == '-' {
			for x := c; x <= r.Chars[i+2]; x++ {
				r.allowed[x] = true
			}
			i += 2
			continue
		}
		r.allowed[c] = true
	}
	r.prefixFirst = [256]bool{}
	r.reservedKeys = map[string]bool{}
	r.reservedPrefixesList = r.reservedPrefixesList[:0]
	for prefix, keys := range r.Reserved {
		r.reservedPrefixesList = append(r.reservedPrefixesList, prefix)
		if prefix != "" {
			r.prefixFirst[prefix[0]] = true
		}
		for _, k := range keys {
			r.reservedKeys[prefix+k] = true
		}
	}
}

// Rejection reasons of the rules.
const (
	ReasonMissingName = "MissingName"
	ReasonKeyLength   = "KeyLength"
	ReasonValueLength = "ValueLength"
	ReasonCharacters  = "InvalidCharacters"
	ReasonUserTags    = "MaxUserTags"
	ReasonTags        = "MaxTags"
	ReasonReserved    = "ReservedKey"
)

// Allowed reports whether byte c may appear in keys and values.
func (r *Rules) Allowed(c byte) bool { return r.allowed[c] }

// Validate checks tags (any order, unique keys) and returns the reason
// and message of the first rule they fail, or empty strings. It allocates
// only on failure.
func (r *Rules) Validate(ts []Tag) (reason, msg string) {
	if len(ts) > r.MaxTags {
		return ReasonTags, fmt.Sprintf("too many tags: %d > %d", len(ts), r.MaxTags)
	}
	hasName, user := false, 0
	for _, t := range ts {
		if reason, msg := r.CheckTag(t.Key, t.Value, true); reason != "" {
			return reason, msg
		}
		hasName = hasName || t.Key == NameKey
		if !r.Restricted(t.Key) {
			user++
		}
	}
	if !hasName {
		return ReasonMissingName, "missing key 'name'"
	}
	if user > r.MaxUserTags {
		return ReasonUserTags, fmt.Sprintf("too many user tags: %d > %d", user, r.MaxUserTags)
	}
	return "", ""
}

// CheckTag checks one tag. Without checkChars the caller vouches that k
// and v hold only allowed characters (decoders learn that while scanning).
func (r *Rules) CheckTag(k, v string, checkChars bool) (reason, msg string) {
	switch n := len(k); {
	case n > r.KeyMax:
		return ReasonKeyLength, fmt.Sprintf("key too long: [%s] (%d > %d)", clip(k), n, r.KeyMax)
	case n < r.KeyMin:
		return ReasonKeyLength, fmt.Sprintf("key too short: [%s] (%d < %d)", clip(k), n, r.KeyMin)
	}
	lo, hi := r.ValueMin, r.ValueMax
	if k == NameKey {
		lo, hi = r.NameMin, r.NameMax
	}
	switch n := len(v); {
	case n > hi:
		return ReasonValueLength, fmt.Sprintf("value too long: %s = [%s] (%d > %d)", clip(k), clip(v), n, hi)
	case n < lo:
		return ReasonValueLength, fmt.Sprintf("value too short: %s = [%s] (%d < %d)", clip(k), clip(v), n, lo)
	}
	if checkChars && !r.ValidChars(k) {
		return ReasonCharacters, fmt.Sprintf("invalid characters in key: [%s] ([%s] are allowed)", clip(k), r.Chars)
	}
	if checkChars && !r.ValidChars(v) {
		return ReasonCharacters, fmt.Sprintf("invalid characters in value: %s = [%s] ([%s] are allowed)", clip(k), clip(v), r.Chars)
	}
	if r.maybeReserved(k) {
		for _, p := range r.reservedPrefixesList {
			if strings.HasPrefix(k, p) && !r.reservedKeys[k] {
				return ReasonReserved, fmt.Sprintf("invalid key for reserved prefix '%s': %s", p, clip(k))
			}
		}
	}
	return "", ""
}

// maybeReserved is a cheap filter before the prefix checks: whether k
// starts with the first byte of a reserved prefix.
func (r *Rules) maybeReserved(k string) bool {
	return len(k) > 0 && r.prefixFirst[k[0]]
}

// ValidChars reports whether s holds only allowed characters.
func (r *Rules) ValidChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !r.allowed[s[i]] {
			return false
		}
	}
	return true
}

// Restricted reports whether k has a reserved prefix: such tags are not
// user tags.
func (r *Rules) Restricted(k string) bool {
	if !r.maybeReserved(k) {
		return false
	}
	for _, p := range r.reservedPrefixesList {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// Sanitize returns s with every character the rules do not allow replaced
// by '_'.
func (r *Rules) Sanitize(s string) string {
	if r.ValidChars(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !r.allowed[c] {
			b[i] = '_'
		}
	}
	return string(b)
}

// clip shortens a key or value echoed in a message: a rejected 10 MB value
// must not come back whole.
func clip(s string) string {
	const max = 300 // above every length limit, so Atlas-exact messages stay whole
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && s[i]&0xc0 == 0x80 { // not in the middle of a UTF-8 sequence
		i--
	}
	return s[:i] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
