package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// waitLog records the waits of the store nodes' WaitApplied.
type waitLog struct {
	mu    sync.Mutex
	waits []string // "node log partition offset"
}

func (w *waitLog) add(node int, log fanout.Log, p int, off int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, fmt.Sprintf("%d %s %d %d", node, log, p, off))
}

func (w *waitLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.waits
	w.waits = nil
	slices.Sort(out)
	return out
}

// TestStrongRead: a strongly consistent read sends each store node the
// log's end offsets of the partitions asked of it and the node waits on
// them before it reads, on the metrics log for metric reads and on the
// spans log for trace reads; an eventual read waits on nothing. A node
// that cannot catch up within its share of the deadline is replaced by
// the partition's other owner; when no owner can, the answer is partial,
// never stale; when the end offsets cannot be read, the read fails with
// ErrUnavailable.
func TestStrongRead(t *testing.T) {
	t.Parallel()
	var log waitLog
	var mu sync.Mutex
	behind := map[int]bool{} // nodes that never catch up
	c := newTestClusterWith(t, func(i int, o *fanout.HandlerOptions) {
		o.WaitApplied = func(ctx context.Context, l fanout.Log, p int, off int64) error {
			log.add(i, l, p, off)
			mu.Lock()
			b := behind[i]
			mu.Unlock()
			if b {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
	})
	var endsErr error
	ends := func(_ context.Context, l fanout.Log) ([]int64, error) {
		mu.Lock()
		defer mu.Unlock()
		if endsErr != nil {
			return nil, endsErr
		}
		out := make([]int64, numPartitions)
		for p := range out {
			out[p] = int64(100*p) + int64(l)
		}
		return out, nil
	}
	q, err := fanout.New(fanout.Options{Owners: c.owners(), AttemptTimeout: 5 * time.Second, EndOffsets: ends})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	req := tsdb.FetchRequest{Query: tags.Eq("name", "req"), Start: dataNow - 3600_000, End: dataNow, Step: step, Aggregation: tsdb.AggSum}
	want, err := c.single.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want.Stats = tsdb.Stats{}
	fetch := func(ctx context.Context) (*tsdb.SeriesSet, error) {
		t.Helper()
		got, err := q.Fetch(ctx, req)
		if got != nil {
			got.Stats = tsdb.Stats{}
		}
		return got, err
	}

	// Eventual: no wait.
	if got, err := fetch(context.Background()); err != nil || !cmp.Equal(want, got, nanEqual()) {
		t.Fatalf("eventual fetch = %v, %v", got, err)
	}
	if w := log.take(); len(w) != 0 {
		t.Errorf("an eventual read waited: %v", w)
	}

	// Strong: every partition waited on at its end offset, by its first
	// owner (p%3), on the metrics log.
	strong := fanout.WithConsistency(context.Background(), fanout.Strong)
	if got, err := fetch(strong); err != nil || !cmp.Equal(want, got, nanEqual()) {
		t.Fatalf("strong fetch = %v, %v", got, err)
	}
	var wantWaits []string
	for p := range numPartitions {
		wantWaits = append(wantWaits, fmt.Sprintf("%d metrics %d %d", p%numNodes, p, 100*p))
	}
	slices.Sort(wantWaits)
	if diff := cmp.Diff(wantWaits, log.take()); diff != "" {
		t.Errorf("strong fetch waits mismatch (-want +got):\n%s", diff)
	}
	// Tags and series wait the same way.
	if _, err := q.Tags(strong, tsdb.TagsRequest{Key: "app"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantWaits, log.take()); diff != "" {
		t.Errorf("strong tags waits mismatch (-want +got):\n%s", diff)
	}
	if _, _, err := q.Series(strong, tsdb.SeriesRequest{Query: tags.Eq("name", "req")}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantWaits, log.take()); diff != "" {
		t.Errorf("strong series waits mismatch (-want +got):\n%s", diff)
	}
	// A trace waits on the spans log, for its own partition only.
	id := c.traces[0]
	if _, err := q.GetTrace(strong, id); err != nil {
		t.Fatal(err)
	}
	p := tracing.TracePartition(id, numPartitions)
	if diff := cmp.Diff([]string{fmt.Sprintf("%d spans %d %d", p%numNodes, p, 100*p+1)}, log.take()); diff != "" {
		t.Errorf("strong trace waits mismatch (-want +got):\n%s", diff)
	}
	if _, err := q.Services(strong); err != nil {
		t.Fatal(err)
	}
	if w := log.take(); len(w) != numPartitions || !strings.Contains(w[0], " spans ") {
		t.Errorf("strong services waits = %v, want one per partition on the spans log", w)
	}

	// Node 0 never catches up: its partitions (0 and 3) go to their other
	// owner (node 1) within the deadline, and the answer is whole.
	mu.Lock()
	behind[0] = true
	mu.Unlock()
	ctx, cancel := context.WithTimeout(strong, 2*time.Second)
	ctx, partial := tsdb.WithPartial(ctx)
	got, err := fetch(ctx)
	cancel()
	if err != nil || !cmp.Equal(want, got, nanEqual()) || partial.Is() {
		t.Errorf("strong fetch with node 0 behind = %v, %v, partial %v; want the whole answer from node 1", got, err, partial.Is())
	}
	// Nodes 0 and 1 behind: partition 0 (nodes 0, 1) has no fresh owner;
	// the answer is partial, never stale.
	mu.Lock()
	behind[1] = true
	mu.Unlock()
	ctx, cancel = context.WithTimeout(strong, 2*time.Second)
	ctx, partial = tsdb.WithPartial(ctx)
	_, err = fetch(ctx)
	cancel()
	if err != nil || !partial.Is() {
		t.Errorf("strong fetch with nodes 0 and 1 behind = %v, partial %v; want a partial answer", err, partial.Is())
	}
	log.take()

	// Kafka unreachable: a strong read fails (503), an eventual one does not.
	mu.Lock()
	endsErr = errors.New("no brokers")
	mu.Unlock()
	if _, err := fetch(strong); !errors.Is(err, fanout.ErrUnavailable) || !errors.Is(err, tsdb.ErrOverloaded) {
		t.Errorf("strong fetch without end offsets = %v, want ErrUnavailable", err)
	}
	if _, err := q.FindTraces(strong, tracing.Query{Service: "x", Limit: 1}); !errors.Is(err, tracing.ErrOverloaded) {
		t.Errorf("strong trace search without end offsets = %v, want a 503 error", err)
	}
}

// TestStrongReadWithoutConsumer: a store node that consumes no log
// (no WaitApplied) does not pretend to be fresh: a strong read it is
// asked is partial.
func TestStrongReadWithoutConsumer(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t)
	q, err := fanout.New(fanout.Options{Owners: c.owners(), EndOffsets: func(context.Context, fanout.Log) ([]int64, error) {
		return make([]int64, numPartitions), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := fanout.WithConsistency(context.Background(), fanout.Strong)
	if _, err := q.Fetch(ctx, tsdb.FetchRequest{Query: tags.Eq("name", "req"), Start: dataNow - step, End: dataNow, Step: step}); !errors.Is(err, fanout.ErrUnavailable) {
		t.Errorf("strong fetch from nodes without a consumer = %v, want ErrUnavailable", err)
	}
}

func TestParseConsistency(t *testing.T) {
	t.Parallel()
	f := func(in string, want fanout.Consistency, ok bool) {
		t.Helper()
		got, err := fanout.ParseConsistency(in)
		if got != want || (err == nil) != ok {
			t.Errorf("ParseConsistency(%q) = %v, %v; want %v, ok %v", in, got, err, want, ok)
		}
	}
	f("", fanout.Eventual, true)
	f("eventual", fanout.Eventual, true)
	f("strong", fanout.Strong, true)
	f(" Strong", fanout.Strong, true)
	f("linearizable", fanout.Eventual, false)
}

// nanEqual compares floats with NaN (no data) equal to itself.
func nanEqual() cmp.Option {
	return cmp.Comparer(func(a, b float64) bool { return a == b || a != a && b != b })
}
