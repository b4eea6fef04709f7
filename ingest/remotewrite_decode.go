package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/prompb"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// A remote-write WriteRequest decoded in one pass without allocating in
// the steady state: the generated prompb.WriteRequest.Unmarshal copies
// every label name and value into a new string and allocates each series'
// slices, about 20 allocations per sample on the standard workload
// (BenchmarkRemoteWriteStore). Here label strings are borrowed from the
// decoded body (tags.BorrowString; the body lives as long as the request,
// and the store copies what it keeps), and the series, label and sample
// slices of the previous request are reused.
//
// Only what remote write 1.0 stores is decoded: per series its labels
// (field 1: name 1, value 2) and samples (field 2: value 1 as a double,
// timestamp 2 as a varint). Exemplars, native histograms and metadata are
// skipped unread, as are unknown fields of any wire type.

// errProto is a malformed protobuf message.
var errProto = errors.New("malformed protobuf")

// Protobuf wire types.
const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireStart  = 3 // deprecated groups: skipped
	wireEnd    = 4
	wireI32    = 5
)

// remoteArena holds the labels and samples of every series of a decoded
// request, each series' slices being parts of these: one array each for a
// request of 10 000 series rather than 20 000 small ones, every one of
// them grown by appends (a series of 6 labels had room for 8), which
// held 4.5 MB a pooled workspace (docs/benchmarks.md, "Memory per series
// at a million series"). A series' slices keep the array they were cut
// from when an arena grows during a request.
type remoteArena struct {
	labels  []prompb.Label
	samples []prompb.Sample
}

// unmarshalWriteRequest decodes b into req, reusing its slices and the
// arena's; strings alias b.
func (a *remoteArena) unmarshalWriteRequest(req *prompb.WriteRequest, b []byte) error {
	a.labels, a.samples = a.labels[:0], a.samples[:0]
	n := 0
	for len(b) > 0 {
		field, wt, rest, err := protoTag(b)
		if err != nil {
			return err
		}
		if field != 1 {
			if b, err = protoSkip(rest, wt); err != nil {
				return err
			}
			continue
		}
		msg, rest, err := protoLen(rest, wt)
		if err != nil {
			return fmt.Errorf("timeseries %d: %w", n, err)
		}
		b = rest
		if n < cap(req.Timeseries) {
			req.Timeseries = req.Timeseries[:n+1]
		} else {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{})
		}
		ts := &req.Timeseries[n]
		if err := a.unmarshalTimeSeries(ts, msg); err != nil {
			return fmt.Errorf("timeseries %d: %w", n, err)
		}
		n++
	}
	req.Timeseries = req.Timeseries[:n]
	return nil
}

// unmarshalTimeSeries decodes a series into ts, its labels and samples at
// the end of the arena's.
func (a *remoteArena) unmarshalTimeSeries(ts *prompb.TimeSeries, b []byte) error {
	l0, s0 := len(a.labels), len(a.samples)
	defer func() {
		ts.Labels = a.labels[l0:len(a.labels):len(a.labels)]
		ts.Samples = a.samples[s0:len(a.samples):len(a.samples)]
	}()
	for len(b) > 0 {
		field, wt, rest, err := protoTag(b)
		if err != nil {
			return err
		}
		if field != 1 && field != 2 {
			if b, err = protoSkip(rest, wt); err != nil {
				return err
			}
			continue
		}
		msg, rest, err := protoLen(rest, wt)
		if err != nil {
			return err
		}
		b = rest
		if field == 1 {
			var l prompb.Label
			if err := unmarshalLabel(&l, msg); err != nil {
				return fmt.Errorf("label %d: %w", len(a.labels)-l0, err)
			}
			a.labels = append(a.labels, l)
			continue
		}
		var s prompb.Sample
		if err := unmarshalSample(&s, msg); err != nil {
			return fmt.Errorf("sample %d: %w", len(a.samples)-s0, err)
		}
		a.samples = append(a.samples, s)
	}
	return nil
}

func unmarshalLabel(l *prompb.Label, b []byte) error {
	for len(b) > 0 {
		field, wt, rest, err := protoTag(b)
		if err != nil {
			return err
		}
		if field != 1 && field != 2 {
			if b, err = protoSkip(rest, wt); err != nil {
				return err
			}
			continue
		}
		s, rest, err := protoLen(rest, wt)
		if err != nil {
			return err
		}
		b = rest
		if field == 1 {
			l.Name = tags.BorrowString(s)
		} else {
			l.Value = tags.BorrowString(s)
		}
	}
	return nil
}

func unmarshalSample(s *prompb.Sample, b []byte) error {
	for len(b) > 0 {
		field, wt, rest, err := protoTag(b)
		if err != nil {
			return err
		}
		switch {
		case field == 1 && wt == wireI64:
			if len(rest) < 8 {
				return errProto
			}
			s.Value = math.Float64frombits(binary.LittleEndian.Uint64(rest))
			b = rest[8:]
		case field == 2 && wt == wireVarint:
			v, n := protoVarint(rest)
			if n <= 0 {
				return errProto
			}
			s.Timestamp = int64(v)
			b = rest[n:]
		case field == 1 || field == 2:
			return fmt.Errorf("field %d has wire type %d: %w", field, wt, errProto)
		default:
			if b, err = protoSkip(rest, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

// protoVarint reads a varint as protobuf decoders do (and as the
// generated prompb code does): at most ten bytes, the bits beyond 64
// dropped. It returns the value and its length, or 0 for none.
func protoVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// protoTag reads a field's tag. Field numbers are 32-bit, as in the
// generated prompb code.
func protoTag(b []byte) (field uint64, wt int, rest []byte, err error) {
	v, n := protoVarint(b)
	f := int32(v >> 3)
	if n <= 0 || f <= 0 {
		return 0, 0, nil, errProto
	}
	return uint64(f), int(v & 7), b[n:], nil
}

// protoLen reads a length-delimited value.
func protoLen(b []byte, wt int) (val, rest []byte, err error) {
	if wt != wireLen {
		return nil, nil, fmt.Errorf("wire type %d where a message or string belongs: %w", wt, errProto)
	}
	v, n := protoVarint(b)
	if n <= 0 || v > uint64(len(b)-n) {
		return nil, nil, errProto
	}
	return b[n : n+int(v)], b[n+int(v):], nil
}

// protoSkip skips a value of wire type wt (a whole group for a group).
func protoSkip(b []byte, wt int) ([]byte, error) {
	depth := 0
	for {
		switch wt {
		case wireVarint:
			_, n := protoVarint(b)
			if n <= 0 {
				return nil, errProto
			}
			b = b[n:]
		case wireI64:
			if len(b) < 8 {
				return nil, errProto
			}
			b = b[8:]
		case wireI32:
			if len(b) < 4 {
				return nil, errProto
			}
			b = b[4:]
		case wireLen:
			_, rest, err := protoLen(b, wt)
			if err != nil {
				return nil, err
			}
			b = rest
		case wireStart:
			depth++
		case wireEnd:
			if depth == 0 {
				return nil, errProto
			}
			depth--
		default:
			return nil, errProto
		}
		if depth == 0 {
			return b, nil
		}
		// Inside a group any tag goes, as in the generated code's skip.
		v, n := protoVarint(b)
		if n <= 0 {
			return nil, errProto
		}
		wt, b = int(v&7), b[n:]
	}
}
