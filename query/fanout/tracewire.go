package fanout

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"regexp"
	"time"

	"github.com/sextant-dev/sextant/tracing"
)

// The span side of the wire format travels as gob (encoding/gob): traces
// are nested records read rarely and in small numbers, where a hand-made
// codec would buy little; gob carries NaN attribute values that JSON
// cannot. Each message is one gob value of the types below.

// traceRequest asks for one trace, of partition TracePartition(ID, N)
// (N is 0 from a query node that predates it: the partition is not
// checked).
type traceRequest struct {
	Version int
	ID      tracing.TraceID
	N       int
	Offsets []partOffset // version 2: a strong read's offsets
}

// findRequest asks for the traces matching Query in partitions Want of N.
type findRequest struct {
	Version int
	Query   wireQuery
	N       int
	Want    []int
	Offsets []partOffset // version 2: a strong read's offsets
}

// wireQuery is tracing.Query with its regexes as their source text.
type wireQuery struct {
	Service, Operation                 string
	Kind                               tracing.SpanKind
	Status                             tracing.StatusCode
	Attributes                         []wireAttr
	MinDuration, MaxDuration           time.Duration
	MinTraceDuration, MaxTraceDuration time.Duration
	Start, End                         int64
	Limit                              int
}

type wireAttr struct {
	Key   string
	Match tracing.AttrMatch
	Value string
	Regex string // the compiled regex's source, anchors included
}

// catalogRequest asks for services (Service empty) or a service's
// operations.
type catalogRequest struct {
	Version    int
	Operations bool
	Service    string
	Kind       tracing.SpanKind
	Offsets    []partOffset // version 2: a strong read's offsets
}

// depsRequest asks for the dependencies of spans started in [Start, End);
// from version 3, of the traces of partitions Want of N only, answered
// with a depsAnswer.
type depsRequest struct {
	Version    int
	Start, End int64
	Offsets    []partOffset // version 2: a strong read's offsets
	N          int          // version 3: the partitions asked for
	Want       []int
}

// depsAnswer answers a depsRequest of version 3: the calls counted in the
// partitions asked for, and those the node counted in the window without
// a partition (tracing.DependencyPartitionReader).
type depsAnswer struct {
	In, Unplaced []tracing.Dependency
}

// gobVersion is the version of a span request with offsets offs: 2 when
// it carries some, else 1 (which store nodes of the release before read).
func gobVersion(offs []partOffset) int {
	if len(offs) > 0 {
		return wireVersionStrong
	}
	return wireVersionBase
}

// checkGobVersion rejects a span request of a version this node does not
// know (a newer query node's), rather than misread it.
func checkGobVersion(v int) error {
	if v < wireVersionBase || v > wireVersion {
		return fmt.Errorf("%w: version %d, want %d to %d", errWire, v, wireVersionBase, wireVersion)
	}
	return nil
}

// catalogAnswer is the answer of a catalog request.
type catalogAnswer struct {
	Services   []string
	Operations []tracing.Operation
}

func toWireQuery(q tracing.Query) wireQuery {
	w := wireQuery{Service: q.Service, Operation: q.Operation, Kind: q.Kind, Status: q.Status,
		MinDuration: q.MinDuration, MaxDuration: q.MaxDuration, MinTraceDuration: q.MinTraceDuration,
		MaxTraceDuration: q.MaxTraceDuration, Start: q.Start, End: q.End, Limit: q.Limit}
	for _, a := range q.Attributes {
		wa := wireAttr{Key: a.Key, Match: a.Match, Value: a.Value}
		if a.Regex != nil {
			wa.Regex = a.Regex.String()
		}
		w.Attributes = append(w.Attributes, wa)
	}
	return w
}

func (w wireQuery) query() (tracing.Query, error) {
	q := tracing.Query{Service: w.Service, Operation: w.Operation, Kind: w.Kind, Status: w.Status,
		MinDuration: w.MinDuration, MaxDuration: w.MaxDuration, MinTraceDuration: w.MinTraceDuration,
		MaxTraceDuration: w.MaxTraceDuration, Start: w.Start, End: w.End, Limit: w.Limit}
	for _, wa := range w.Attributes {
		a := tracing.AttrFilter{Key: wa.Key, Match: wa.Match, Value: wa.Value}
		if wa.Match == tracing.MatchRegex {
			re, err := regexp.Compile(wa.Regex)
			if err != nil {
				return tracing.Query{}, fmt.Errorf("%w: attribute %q: %w", errWire, wa.Key, err)
			}
			a.Regex = re
		}
		q.Attributes = append(q.Attributes, a)
	}
	return q, nil
}

// encodeGob encodes v.
func encodeGob(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b.Bytes(), nil
}

// decodeGob decodes one value into v, which must be the whole message.
func decodeGob(src []byte, v any) error {
	r := bytes.NewReader(src)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("%w: %T: %w", errWire, v, err)
	}
	if r.Len() > 0 {
		return fmt.Errorf("%w: %d bytes after the end", errWire, r.Len())
	}
	return nil
}
