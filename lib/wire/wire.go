// Package wire owns the Atlas publish payload: the JSON document that
// POST /api/v1/publish accepts, and the tag rules a datapoint must meet.
// The client library encodes with it and the server's ingest validates
// with the same Rules, so a client learns what the server would reject
// before sending.
//
// A payload is
//
//	{"tags": {<common tags>}, "metrics": [{"tags": {"name": ..., ...}, "timestamp": <ms>, "value": <v>}]}
//
// Non-finite values are sent as the strings "NaN" and "Infinity".
package wire

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tag is one key and value.
type Tag struct {
	Key   string
	Value string
}

// SortTags sorts tags by key in place; a later duplicate key wins.
func SortTags(ts []Tag) []Tag {
	slices.SortStableFunc(ts, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	out := ts[:0]
	for _, t := range ts {
		if len(out) > 0 && out[len(out)-1].Key == t.Key {
			out[len(out)-1] = t
			continue
		}
		out = append(out, t)
	}
	return out
}

// Datapoint is one metric of a payload.
type Datapoint struct {
	Tags      []Tag // include name
	Timestamp int64 // Unix ms
	Value     float64
}

// AppendPayload appends the JSON payload of common tags and datapoints to
// dst. Tags are written in the order given.
func AppendPayload(dst []byte, common []Tag, dps []Datapoint) []byte {
	dst = append(dst, `{"tags":`...)
	dst = appendTags(dst, common)
	dst = append(dst, `,"metrics":[`...)
	for i, d := range dps {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"tags":`...)
		dst = appendTags(dst, d.Tags)
		dst = append(dst, `,"timestamp":`...)
		dst = strconv.AppendInt(dst, d.Timestamp, 10)
		dst = append(dst, `,"value":`...)
		dst = appendValue(dst, d.Value)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendTags(dst []byte, ts []Tag) []byte {
	dst = append(dst, '{')
	for i, t := range ts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, t.Key)
		dst = append(dst, ':')
		dst = appendString(dst, t.Value)
	}
	return append(dst, '}')
}

func appendValue(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendString writes a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			i++
		}
	}
	return append(dst, '"')
}
