package kafkalog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Exemplars travel on the spans topic, each in the partition of its trace,
// so that the store nodes holding a trace hold its exemplars and a query
// node finds them where it finds the trace (FORMAT.md, kind 3).

// AppendExemplars appends an exemplars record holding ex to dst.
func AppendExemplars(dst []byte, ex []tracing.Exemplar) []byte {
	start := len(dst)
	dst = append(dst, Version, byte(KindExemplars))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ex)))
	var enc []byte
	for i := range ex {
		e := &ex[i]
		enc = tags.FromMap(e.Tags).AppendTo(enc[:0])
		dst = binary.AppendUvarint(dst, uint64(len(enc)))
		dst = append(dst, enc...)
		dst = binary.AppendVarint(dst, e.T)
		dst = append(dst, e.TraceID[:]...)
		dst = append(dst, e.SpanID[:]...)
		dst = binary.AppendVarint(dst, int64(e.Duration))
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeExemplars returns the exemplars of an exemplars record.
func DecodeExemplars(rec []byte) ([]tracing.Exemplar, error) {
	k, body, err := check(rec)
	if err != nil {
		return nil, err
	}
	if k != KindExemplars {
		return nil, fmt.Errorf("%w: kind %d, want exemplars", ErrCorrupt, k)
	}
	if len(body) < countLen {
		return nil, fmt.Errorf("%w: no count", ErrCorrupt)
	}
	n := int(binary.BigEndian.Uint32(body))
	body = body[countLen:]
	// An exemplar takes at least 27 bytes: a bound on n before allocating.
	if n > len(body)/27 {
		return nil, fmt.Errorf("%w: %d exemplars in %d bytes", ErrCorrupt, n, len(body))
	}
	out := make([]tracing.Exemplar, 0, n)
	var buf []tags.Tag
	for i := range n {
		size, w := binary.Uvarint(body)
		if w <= 0 || w != uvarintLen(size) || size > uint64(len(body)-w) {
			return nil, fmt.Errorf("%w: exemplar %d: bad tags length", ErrCorrupt, i)
		}
		body = body[w:]
		if buf, err = decodeTags(buf[:0], string(body[:size])); err != nil {
			return nil, fmt.Errorf("%w: exemplar %d: %w", ErrCorrupt, i, err)
		}
		body = body[size:]
		e := tracing.Exemplar{Tags: make(map[string]string, len(buf))}
		for _, tg := range buf {
			e.Tags[tg.Key] = tg.Value
		}
		t, w := binary.Varint(body)
		if w <= 0 || w != uvarintLen(zigzag(t)) || len(body)-w < 24 {
			return nil, fmt.Errorf("%w: exemplar %d: bad time or ids", ErrCorrupt, i)
		}
		e.T = t
		body = body[w:]
		copy(e.TraceID[:], body)
		copy(e.SpanID[:], body[16:])
		body = body[24:]
		d, w := binary.Varint(body)
		if w <= 0 || w != uvarintLen(zigzag(d)) {
			return nil, fmt.Errorf("%w: exemplar %d: bad duration", ErrCorrupt, i)
		}
		e.Duration = time.Duration(d)
		body = body[w:]
		out = append(out, e)
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last exemplar", ErrCorrupt, len(body))
	}
	return out, nil
}

// WriteExemplars implements tracing.ExemplarStore's write side: the
// exemplars go to the partitions of their traces, and it returns once
// Kafka acknowledged them (an error wrapping tracing.ErrUnavailable when
// it did not).
func (p *Producer) WriteExemplars(ctx context.Context, ex []tracing.Exemplar) error {
	if len(ex) == 0 {
		return ctx.Err()
	}
	parts := map[int][]tracing.Exemplar{}
	for _, e := range ex {
		part := tracing.TracePartition(e.TraceID, p.opts.Partitions)
		parts[part] = append(parts[part], e)
	}
	recs := make([]*kgo.Record, 0, len(parts))
	for part, es := range parts {
		recs = append(recs, &kgo.Record{Topic: p.spans, Partition: int32(part), Value: AppendExemplars(nil, es)})
	}
	if _, err := p.produce(ctx, recs); err != nil {
		return fmt.Errorf("kafkalog: write %d exemplars: %w", len(ex), errors.Join(tracing.ErrUnavailable, err))
	}
	return nil
}

// ErrNoExemplars is the answer of Producer.Exemplars: an ingest node keeps
// no exemplars, the store nodes do (a query node reads them there).
var ErrNoExemplars = errors.New("kafkalog: exemplars are read from the store nodes")

// Exemplars implements tracing.ExemplarStore's read side for a producer,
// which holds none: it returns ErrNoExemplars.
func (p *Producer) Exemplars(context.Context, int64, int64) ([]tracing.Exemplar, error) {
	return nil, ErrNoExemplars
}
