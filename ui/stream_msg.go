package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/live"
)

// maxClientMessage bounds a client message (a subscription with its
// expression); the expression itself is bounded further by MaxQueryLength.
const maxClientMessage = 64 << 10

// clientMessage is a message from a client: subscribe or unsubscribe.
type clientMessage struct {
	Type     string
	ID       string
	Q        string
	Step     int64 // ms, 0: the storage step
	Backfill int64 // ms
}

// fieldError is a client message field that is not acceptable.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// parseClientMessage decodes and checks one client message. Durations are
// strings such as "60s", "PT1M" or "1h", or numbers of milliseconds.
func parseClientMessage(data []byte) (clientMessage, error) {
	var raw struct {
		Type     string          `json:"type"`
		ID       string          `json:"id"`
		Q        string          `json:"q"`
		Step     json.RawMessage `json:"step"`
		Backfill json.RawMessage `json:"backfill"`
	}
	var m clientMessage
	if len(data) > maxClientMessage {
		return m, &fieldError{"message", fmt.Sprintf("%d bytes long, limit is %d", len(data), maxClientMessage)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return m, &fieldError{"message", "not a JSON object: " + err.Error()}
	}
	if dec.More() {
		return m, &fieldError{"message", "more than one JSON value"}
	}
	m.Type, m.ID, m.Q = raw.Type, raw.ID, raw.Q
	switch m.Type {
	case "subscribe", "unsubscribe":
	case "":
		return m, &fieldError{"type", "missing; use subscribe or unsubscribe"}
	default:
		return m, &fieldError{"type", fmt.Sprintf("%q: use subscribe or unsubscribe", m.Type)}
	}
	if m.ID == "" {
		return m, &fieldError{"id", "missing"}
	}
	if len(m.ID) > 256 {
		return m, &fieldError{"id", fmt.Sprintf("%d bytes long, limit is 256", len(m.ID))}
	}
	if m.Type == "unsubscribe" {
		return m, nil
	}
	if m.Q == "" {
		return m, &fieldError{"q", "missing; give an expression such as name,sps,:eq,:sum"}
	}
	var err error
	if m.Step, err = parseDurationField("step", raw.Step); err != nil {
		return m, err
	}
	if m.Backfill, err = parseDurationField("backfill", raw.Backfill); err != nil {
		return m, err
	}
	return m, nil
}

// parseDurationField reads a duration given as a string or a number of ms.
func parseDurationField(field string, raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, &fieldError{field, "not a string: " + err.Error()}
		}
		return parseDuration(field, s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > 1e15 || f != math.Trunc(f) {
		return 0, &fieldError{field, fmt.Sprintf("%s is not a duration such as \"60s\" or a whole number of milliseconds", raw)}
	}
	return int64(f), nil
}

// parseDuration reads a duration string; empty is zero.
func parseDuration(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	d, err := expr.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, &fieldError{field, fmt.Sprintf("%q is not a duration such as 60s, 1h or PT5M", s)}
	}
	return d, nil
}

// appendTimeseries encodes one line of an update as a timeseries message.
func appendTimeseries(b []byte, sub string, l *live.Line) []byte {
	return appendTimeseriesTail(appendTimeseriesHead(b, sub), l)
}

// appendTimeseriesHead encodes the part of a timeseries message that
// depends on the subscriber: its subscription id.
func appendTimeseriesHead(b []byte, sub string) []byte {
	b = append(b, `{"type":"timeseries","subscription":`...)
	return appendString(b, sub)
}

// appendTimeseriesTail encodes the rest, the same for every subscriber of
// the line's expression.
func appendTimeseriesTail(b []byte, l *live.Line) []byte {
	b = append(b, `,"id":`...)
	b = appendString(b, l.ID)
	b = append(b, `,"label":`...)
	b = appendString(b, l.Label)
	b = append(b, `,"tags":`...)
	b = appendTags(b, l.Tags)
	b = append(b, `,"start":`...)
	b = strconv.AppendInt(b, l.Start, 10)
	b = append(b, `,"end":`...)
	b = strconv.AppendInt(b, l.End, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, l.Step, 10)
	b = append(b, `,"data":{"type":"array","values":[`...)
	for i, v := range l.Values {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, '"')
			b = expr.AppendDouble(b, v)
			b = append(b, '"')
		} else {
			b = expr.AppendDouble(b, v)
		}
	}
	return append(b, "]}}"...)
}

// appendHeartbeat encodes a heartbeat message.
func appendHeartbeat(b []byte, ts, step int64) []byte {
	b = append(b, `{"type":"heartbeat","timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, step, 10)
	return append(b, '}')
}

// appendDiagnostic encodes a diagnostic message; sub may be empty.
func appendDiagnostic(b []byte, sub, level, msg string, dropped int64) []byte {
	b = append(b, `{"type":"diagnostic","subscription":`...)
	b = appendString(b, sub)
	b = append(b, `,"level":`...)
	b = appendString(b, level)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"dropped":`...)
	b = strconv.AppendInt(b, dropped, 10)
	return append(b, '}')
}

// appendTags encodes tags as a JSON object with sorted keys.
func appendTags(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
