package ingest

import (
	"fmt"
	"strings"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Rules are the tag validation rules of Atlas's publish API
// (atlas-webapi reference.conf), with its defaults. Failures are reported
// with Atlas's messages.
type Rules struct {
	KeyMin, KeyMax       int    // key length: 2..60
	NameMin, NameMax     int    // length of the name value: 2..255
	ValueMin, ValueMax   int    // length of other values: 1..120
	Chars                string // characters allowed in keys and values
	MaxUserTags          int    // tags without a reserved prefix: 20
	MaxTags              int    // all tags: 30
	Reserved             map[string][]string
	allowed              [256]bool
	scanClass            [256]uint8 // for decoders: see classTag...
	prefixFirst          [256]bool
	reservedKeys         map[string]bool
	reservedPrefixesList []string
}

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
	r.compile()
	return r
}

// compile prepares the lookup tables.
func (r *Rules) compile() {
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
	for c := range r.scanClass {
		switch {
		case c == '"':
			r.scanClass[c] = classQuote
		case c == '\\':
			r.scanClass[c] = classEscape
		case !r.allowed[c]:
			r.scanClass[c] = classOther
		}
	}
	r.reservedKeys = map[string]bool{}
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

// Rejection reasons of the rules, used as the reason tag of
// ingest.rejected.
const (
	ReasonMissingName    = "MissingName"
	ReasonKeyLength      = "KeyLength"
	ReasonValueLength    = "ValueLength"
	ReasonCharacters     = "InvalidCharacters"
	ReasonUserTags       = "MaxUserTags"
	ReasonTags           = "MaxTags"
	ReasonReserved       = "ReservedKey"
	ReasonTimestamp      = "InvalidTimestamp"
	ReasonValue          = "InvalidValue"
	ReasonDataTooOld     = "DataTooOld"
	ReasonDataFromFuture = "DataFromFuture"
)

// Byte classes of scanClass: decoders scan strings with it and learn, at
// no extra cost, whether a string holds only allowed characters.
const (
	classTag    = 0 // an allowed tag character
	classQuote  = 1
	classEscape = 2
	classOther  = 3
)

// Validate checks a sorted tag set and returns the reason and message of
// the first rule it fails, or empty strings. It allocates only on failure.
func (r *Rules) Validate(ts tags.Set) (reason, msg string) {
	return r.validate(ts, true)
}

// validate is Validate; without checkChars the caller knows that every
// key and value holds only allowed characters.
func (r *Rules) validate(ts tags.Set, checkChars bool) (reason, msg string) {
	if len(ts) > r.MaxTags {
		return ReasonTags, fmt.Sprintf("too many tags: %d > %d", len(ts), r.MaxTags)
	}
	if _, ok := ts.Get(tags.NameKey); !ok {
		return ReasonMissingName, "missing key 'name'"
	}
	user := 0
	for _, t := range ts {
		if reason, msg := r.validateTag(t.Key, t.Value, checkChars); reason != "" {
			return reason, msg
		}
		if !r.restricted(t.Key) {
			user++
		}
	}
	if user > r.MaxUserTags {
		return ReasonUserTags, fmt.Sprintf("too many user tags: %d > %d", user, r.MaxUserTags)
	}
	return "", ""
}

func (r *Rules) validateTag(k, v string, checkChars bool) (reason, msg string) {
	switch n := len(k); {
	case n > r.KeyMax:
		return ReasonKeyLength, fmt.Sprintf("key too long: [%s] (%d > %d)", k, n, r.KeyMax)
	case n < r.KeyMin:
		return ReasonKeyLength, fmt.Sprintf("key too short: [%s] (%d < %d)", k, n, r.KeyMin)
	}
	lo, hi := r.ValueMin, r.ValueMax
	if k == tags.NameKey {
		lo, hi = r.NameMin, r.NameMax
	}
	switch n := len(v); {
	case n > hi:
		return ReasonValueLength, fmt.Sprintf("value too long: %s = [%s] (%d > %d)", k, v, n, hi)
	case n < lo:
		return ReasonValueLength, fmt.Sprintf("value too short: %s = [%s] (%d < %d)", k, v, n, lo)
	}
	if checkChars && !r.validChars(k) {
		return ReasonCharacters, fmt.Sprintf("invalid characters in key: [%s] ([%s] are allowed)", k, r.Chars)
	}
	if checkChars && !r.validChars(v) {
		return ReasonCharacters, fmt.Sprintf("invalid characters in value: %s = [%s] ([%s] are allowed)", k, v, r.Chars)
	}
	if r.maybeReserved(k) {
		for _, p := range r.reservedPrefixesList {
			if strings.HasPrefix(k, p) && !r.reservedKeys[k] {
				return ReasonReserved, fmt.Sprintf("invalid key for reserved prefix '%s': %s", p, k)
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

func (r *Rules) validChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !r.allowed[s[i]] {
			return false
		}
	}
	return true
}

// restricted reports whether k has a reserved prefix: such tags are not
// user tags.
func (r *Rules) restricted(k string) bool {
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
// by '_'. Protocols whose attributes are not Atlas tags (OTLP, remote
// write) map them this way.
func (r *Rules) Sanitize(s string) string {
	if r.validChars(s) {
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
