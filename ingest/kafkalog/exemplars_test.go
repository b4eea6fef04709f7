package kafkalog

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tracing"
)

func testExemplars(n int) []tracing.Exemplar {
	var out []tracing.Exemplar
	for i := range n {
		out = append(out, tracing.Exemplar{
			Tags: map[string]string{tracing.TagService: "svc", tracing.TagOperation: "op-" + string(rune('a'+i%26)),
				tracing.TagSpanKind: "server", tracing.TagStatusCode: "OK"},
			T: now - int64(i)*step, TraceID: traceID(i), SpanID: tracing.SpanID{byte(i), 1}, Duration: time.Duration(i+1) * time.Millisecond,
		})
	}
	return out
}

func TestExemplarsRecord(t *testing.T) {
	t.Parallel()
	ex := testExemplars(5)
	rec := AppendExemplars([]byte("prefix"), ex)
	if !bytes.HasPrefix(rec, []byte("prefix")) {
		t.Fatal("AppendExemplars dropped dst")
	}
	got, err := DecodeExemplars(rec[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ex, got); diff != "" {
		t.Errorf("round trip mismatch (-sent +decoded):\n%s", diff)
	}
	if k, err := KindOf(rec[len("prefix"):]); err != nil || k != KindExemplars {
		t.Errorf("KindOf = %v, %v", k, err)
	}
	body := rec[len("prefix"):]
	for i := range body {
		if _, err := DecodeExemplars(body[:i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode of %d of %d bytes = %v, want ErrCorrupt", i, len(body), err)
		}
	}
	if _, err := DecodeSpans(body); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeSpans of an exemplars record = %v, want ErrCorrupt", err)
	}
}

// TestExemplarsThroughTheLog: exemplars an ingest node writes reach the
// span store of the store node that consumes their traces' partitions.
func TestExemplarsThroughTheLog(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	ctx := context.Background()
	ex := testExemplars(12)
	if err := p.WriteExemplars(ctx, ex); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exemplars(ctx, 0, now); !errors.Is(err, ErrNoExemplars) {
		t.Errorf("Producer.Exemplars = %v, want ErrNoExemplars", err)
	}
	n := newNode(t, nil)
	c, err := NewConsumer(ConsumerOptions{Brokers: brokers, Prefix: "test", Partitions: partitions,
		Appender: n.store, Traces: n.spans, KV: n.kv, Exemplars: n.spans, PollWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitCaughtUp(t, c, brokers, []int{0, 1, 2, 3, 4, 5, 6, 7})
	got, err := n.spans.Exemplars(ctx, now-int64(len(ex))*step, now+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ex) {
		t.Fatalf("the store node keeps %d exemplars, want %d: %+v", len(got), len(ex), got)
	}
	byTrace := map[tracing.TraceID]tracing.Exemplar{}
	for _, e := range got {
		byTrace[e.TraceID] = e
	}
	for _, e := range ex {
		if diff := cmp.Diff(e, byTrace[e.TraceID]); diff != "" {
			t.Errorf("exemplar of trace %s mismatch (-written +stored):\n%s", e.TraceID, diff)
		}
	}
}
