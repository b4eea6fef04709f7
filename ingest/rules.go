package ingest

import (
	"fmt"

	"github.com/sextant-dev/sextant/lib/wire"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Rules are the tag rules of lib/wire (Atlas's publish rules, shared with
// the client library) with the byte classes the decoders scan with.
type Rules struct {
	*wire.Rules
	scanClass [256]uint8 // for decoders: see classTag...
}

// DefaultRules returns Atlas's defaults.
func DefaultRules() *Rules { return NewRules(wire.DefaultRules()) }

// NewRules wraps compiled wire rules.
func NewRules(w *wire.Rules) *Rules {
	r := &Rules{Rules: w}
	for c := range r.scanClass {
		switch {
		case c == '"':
			r.scanClass[c] = classQuote
		case c == '\\':
			r.scanClass[c] = classEscape
		case !w.Allowed(byte(c)):
			r.scanClass[c] = classOther
		}
	}
	return r
}

// Rejection reasons, used as the reason tag of sextant.ingest.rejected:
// the rules' and the ingest path's own.
const (
	ReasonMissingName    = wire.ReasonMissingName
	ReasonKeyLength      = wire.ReasonKeyLength
	ReasonValueLength    = wire.ReasonValueLength
	ReasonCharacters     = wire.ReasonCharacters
	ReasonUserTags       = wire.ReasonUserTags
	ReasonTags           = wire.ReasonTags
	ReasonReserved       = wire.ReasonReserved
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
		if reason, msg := r.CheckTag(t.Key, t.Value, checkChars); reason != "" {
			return reason, msg
		}
		if !r.Restricted(t.Key) {
			user++
		}
	}
	if user > r.MaxUserTags {
		return ReasonUserTags, fmt.Sprintf("too many user tags: %d > %d", user, r.MaxUserTags)
	}
	return "", ""
}
