package fanout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tracing"
)

// TestExemplars: the query node's exemplars are those of one store
// holding all of them: each store node answers for its traces'
// partitions only (node 0 holds every partition's), and where exemplars
// of one series and step sit on several nodes the slowest wins, as the
// single store keeps it; with one node down its replicas answer the same.
// A strong read waits on the spans log.
func TestExemplars(t *testing.T) {
	t.Parallel()
	var log waitLog
	c := newTestClusterWith(t, func(i int, o *fanout.HandlerOptions) {
		o.WaitApplied = func(_ context.Context, l fanout.Log, p int, off int64) error {
			log.add(i, l, p, off)
			return nil
		}
	})
	ctx := context.Background()
	// 60 exemplars over 4 series and 5 steps: 3 per series and step, of
	// traces in different partitions, slower as i grows (an ingest node
	// writes only a new slowest, so the single store keeps the last).
	var all []tracing.Exemplar
	for i := range 60 {
		all = append(all, tracing.Exemplar{
			Tags: map[string]string{tracing.TagService: "svc", tracing.TagOperation: fmt.Sprint("op-", i%4),
				tracing.TagSpanKind: "server", tracing.TagStatusCode: "OK"},
			T: dataNow - int64(i%5)*step, TraceID: tracing.TraceID{byte(i), byte(i * 7), 3}, SpanID: tracing.SpanID{byte(i)},
			Duration: time.Duration(i+1) * time.Millisecond,
		})
	}
	if err := c.spans.WriteExemplars(ctx, all); err != nil {
		t.Fatal(err)
	}
	for i, n := range c.nodes {
		var mine []tracing.Exemplar
		for _, e := range all {
			if i == 0 || owns(i, tracing.TracePartition(e.TraceID, numPartitions)) {
				mine = append(mine, e)
			}
		}
		if err := n.spans.WriteExemplars(ctx, mine); err != nil {
			t.Fatal(err)
		}
	}
	want, err := c.spans.Exemplars(ctx, dataNow-10*step, dataNow+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 20 {
		t.Fatalf("the single store keeps %d exemplars, want 20 (4 series x 5 steps)", len(want))
	}
	q, err := fanout.New(fanout.Options{Owners: c.owners(), EndOffsets: func(context.Context, fanout.Log) ([]int64, error) {
		return make([]int64, numPartitions), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	compare := func(t *testing.T) {
		got, err := q.Exemplars(ctx, dataNow-10*step, dataNow+1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("exemplars mismatch (-single +cluster):\n%s", diff)
		}
		got, err = q.Exemplars(ctx, dataNow-step, dataNow)
		if err != nil || len(got) != 4 {
			t.Errorf("exemplars of one step = %d, %v; want 4", len(got), err)
		}
	}
	t.Run("all nodes", compare)
	if _, err := q.Exemplars(fanout.WithConsistency(ctx, fanout.Strong), dataNow-step, dataNow+1); err != nil {
		t.Fatal(err)
	}
	if w := log.take(); len(w) != numPartitions || w[0] != "0 spans 0 0" {
		t.Errorf("strong exemplars waits = %v, want one per partition on the spans log", w)
	}
	c.stop(2)
	t.Run("node 2 down", compare)
}
