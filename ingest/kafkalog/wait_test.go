package kafkalog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestWaitApplied: a write acknowledged by the producer is in the store
// once WaitApplied returns for the end offsets EndReader read after it,
// every time; a partition the consumer does not own is ErrNotConsumed,
// and an offset past the end waits until the context ends.
func TestWaitApplied(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	n := newNode(t, nil)
	assign := make(chan []int, 1)
	assign <- []int{0, 1, 2, 3, 4, 5} // not 6 and 7
	c, _ := consume(t, brokers, n, assign, nil)
	r, err := NewEndReader(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	// Series whose partition the consumer owns.
	var mine []tags.Set
	for i := 0; len(mine) < 20; i++ {
		ts := tags.New("name", "wait", "atlas.dstype", "gauge", "i", string(rune('a'+i%26))+string(rune('a'+i/26)))
		if tags.PartitionOf(ts, partitions) < 6 {
			mine = append(mine, ts)
		}
	}
	for i, ts := range mine {
		if err := p.Append(ctx, &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: ts, T: now - step, V: float64(i + 1)}}}); err != nil {
			t.Fatal(err)
		}
		ends, err := r.EndOffsets(ctx, MetricsTopic("test"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ends) != partitions {
			t.Fatalf("EndOffsets = %v, want %d partitions", ends, partitions)
		}
		part := tags.PartitionOf(ts, partitions)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.WaitApplied(wctx, MetricsTopic("test"), part, ends[part])
		cancel()
		if err != nil {
			t.Fatalf("WaitApplied(%d, %d): %v", part, ends[part], err)
		}
		iv, _ := ts.Get("i")
		ss, err := n.store.Fetch(ctx, tsdb.FetchRequest{Query: tags.Eq("i", iv), Start: now - 2*step, End: now, Step: step})
		if err != nil {
			t.Fatal(err)
		}
		if len(ss.Series) != 1 || ss.Series[0].Values[1] != float64(i+1) {
			t.Fatalf("after WaitApplied the store answers %+v, want %d at the last step", ss.Series, i+1)
		}
	}
	if err := c.WaitApplied(ctx, MetricsTopic("test"), 7, 0); !errors.Is(err, ErrNotConsumed) {
		t.Errorf("WaitApplied on a partition not consumed = %v, want ErrNotConsumed", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := c.WaitApplied(wctx, MetricsTopic("test"), 0, 1<<40); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitApplied past the end = %v, want DeadlineExceeded", err)
	}
}
