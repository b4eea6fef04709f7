package kafkalog

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// Spans and exemplars applied once (docs/cluster.md, "Delivery"): the
// span store keeps the spans topic's mark in the batch of each write.

// traceIn returns the k-th test trace id whose partition is p.
func traceIn(p, k int) tracing.TraceID {
	for i := 0; ; i++ {
		if id := traceID(i); tracing.TracePartition(id, partitions) == p {
			if k == 0 {
				return id
			}
			k--
		}
	}
}

// callTrace is one write of trace id: a span of service api named name,
// and its child of service db, which the dependency graph counts as one
// call from api to db.
func callTrace(id tracing.TraceID, name string) ptrace.Traces {
	td := ptrace.NewTraces()
	for i, svc := range []string{"api", "db"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID(id))
		s.SetSpanID(pcommon.SpanID{id[0], 7: byte(i + 1)})
		if i > 0 {
			s.SetParentSpanID(pcommon.SpanID{id[0], 7: 1})
		}
		s.SetName(name)
		start := time.UnixMilli(now - 5000)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(10 * time.Millisecond)))
	}
	return td
}

// spanNamed says whether a span of tds is named name.
func spanNamed(tds []ptrace.Traces, name string) bool {
	for _, td := range tds {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if s.Name() == name {
						return true
					}
				}
			}
		}
	}
	return false
}

// frozenKV is a KV whose writes are dropped once frozen: the process that
// wrote through it died.
type frozenKV struct {
	tsdb.KV
	frozen atomic.Bool
}

func (kv *frozenKV) Put(ctx context.Context, key string, value []byte) error {
	if kv.frozen.Load() {
		return nil
	}
	return kv.KV.Put(ctx, key, value)
}

func spanOptions(fs vfs.FS, reg *lib.Registry) spanstore.Options {
	return spanstore.Options{FS: fs, Registry: reg, Now: func() time.Time { return time.UnixMilli(now) }}
}

// TestSpansCrashBeforeOffset: a store node dies after its span store made
// a record's spans durable and before the offset was kept in KV (the
// image of its disk is taken there, as a kill leaves it). Started again
// on that disk, it resumes after the record (the span store's mark):
// nothing is stored again, and the dependency graph counts each call
// once, as a single node fed the same writes does. An exemplars record
// moves the mark too. Before marks, the record was applied again: its
// spans stored twice and its call counted twice.
func TestSpansCrashBeforeOffset(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	ctx := context.Background()
	const part = 5
	topic := SpansTopic("test")
	first, second := traceIn(part, 0), traceIn(part, 1)
	ex := []tracing.Exemplar{{Tags: map[string]string{"service.name": "api", "operation": "call"}, T: now - 5000,
		TraceID: first, SpanID: tracing.SpanID{first[0], 7: 1}, Duration: 10 * time.Millisecond}}
	single, err := spanstore.Open("", spanOptions(vfs.NewMem(), nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { single.Close() })
	for _, td := range []ptrace.Traces{callTrace(first, "call"), callTrace(second, "trigger")} {
		if err := single.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	if err := single.WriteExemplars(ctx, ex); err != nil {
		t.Fatal(err)
	}

	fs := vfs.NewCrashableMem()
	spans, err := spanstore.Open("s", spanOptions(fs, nil))
	if err != nil {
		t.Fatal(err)
	}
	kv := &frozenKV{KV: tsdbtest.NewKV()}
	crashed := make(chan *vfs.MemFS, 1)
	c, err := NewConsumer(ConsumerOptions{Brokers: brokers, Prefix: "test", Partitions: partitions,
		Appender: newNode(t, nil).store, Traces: spans, Exemplars: spans, KV: kv, PollWait: 100 * time.Millisecond,
		AfterApply: func(a Applied) {
			if spanNamed(a.Spans, "trigger") {
				// The process dies here: what it wrote to its files stays,
				// and it keeps no offset any more.
				kv.frozen.Store(true)
				crashed <- fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: newRNG()})
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	// One record at a time, each applied before the next: the last is then
	// a fetch of its own.
	if err := p.WriteTraces(ctx, callTrace(first, "call")); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, c, brokers, []int{part})
	if err := p.WriteExemplars(ctx, ex); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, c, brokers, []int{part})
	if next, ok := spans.Marked(topic, part); !ok || next != 2 {
		t.Errorf("after an exemplars record, the span store's mark = %d, %v; want 2", next, ok)
	}
	if err := p.WriteTraces(ctx, callTrace(second, "trigger")); err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, crashed, cancel, done, spans)

	// The restart, on the image, with the offsets the KV kept.
	kv.frozen.Store(false)
	if v, err := kv.Get(ctx, offsetKey(topic, part)); err != nil || len(v) != 8 || binary.BigEndian.Uint64(v) != 2 {
		t.Fatalf("the KV keeps offset %x (%v); want 2, the trigger's record not kept", v, err)
	}
	reg := lib.NewRegistry(lib.RegistryOptions{})
	restarted, err := spanstore.Open("s", spanOptions(img, reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restarted.Close() })
	if next, ok := restarted.Marked(topic, part); !ok || next != 3 {
		t.Errorf("the restarted span store's mark = %d, %v; want 3 (all three records)", next, ok)
	}
	n := &node{store: newNode(t, nil).store, spans: restarted, kv: kv}
	c2, _ := consume(t, brokers, n, nil, nil)
	waitCaughtUp(t, c2, brokers, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if got := reg.Counter("sextant.traces.spansStored").Count(); got != 0 {
		t.Errorf("the restarted store stored %v spans again, want 0", got)
	}
	window := [2]int64{time.UnixMilli(now - time.Hour.Milliseconds()).UnixNano(), time.UnixMilli(now + 1).UnixNano()}
	want, err1 := single.Dependencies(ctx, window[0], window[1])
	got, err2 := restarted.Dependencies(ctx, window[0], window[1])
	if err1 != nil || err2 != nil || len(want) != 1 || want[0].CallCount != 2 {
		t.Fatalf("Dependencies: single node %v (%v), restarted %v (%v)", want, err1, got, err2)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dependencies after a crash between the span store's write and the offset's (-single +restarted):\n%s", diff)
	}
	for _, id := range []tracing.TraceID{first, second} {
		if tr, err := restarted.GetTrace(ctx, id); err != nil || len(tr.Spans) != 2 {
			t.Errorf("trace %v after the restart: %d spans (%v), want 2", id, len(tr.Spans), err)
		}
	}
	wantEx, _ := single.Exemplars(ctx, now-time.Hour.Milliseconds(), now+1)
	gotEx, err := restarted.Exemplars(ctx, now-time.Hour.Milliseconds(), now+1)
	if diff := cmp.Diff(wantEx, gotEx); err != nil || diff != "" {
		t.Errorf("exemplars after the restart (-single +restarted) %v:\n%s", err, diff)
	}
}
