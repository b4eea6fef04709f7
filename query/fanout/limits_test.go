package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// testLimits are the query limits of the limit tests, on the single store,
// the store nodes and the query node alike: name=lat has 40 series (over
// the series limit, while every node's share is under it), name=req 30
// (under it), and 30 series over 2 hours at the minute step are 3 600
// datapoints (over the datapoints limit; over 1 hour, 1 800, under it).
var testLimits = tsdb.Cost{Series: 35, Datapoints: 3000, Bytes: 64 << 20}

// limitedQuerier is a fan-out over c with the test limits.
func limitedQuerier(t *testing.T, o fanout.Owners) *fanout.Querier {
	t.Helper()
	q, err := fanout.New(fanout.Options{Owners: o, AttemptTimeout: 10 * time.Second, Limits: testLimits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// TestLimitsOnTheTotal: the query limits bound the total over the store
// nodes as they bound one store holding all the data: a query a single
// node refuses (too many series, too many datapoints) is refused with the
// same status and message by a query node over 3 store nodes, although
// each node's share is within the limits; a query within them is
// answered as by the single node.
func TestLimitsOnTheTotal(t *testing.T) {
	t.Parallel()
	c := newTestClusterOpts(t, clusterOpts{limits: testLimits})
	single := graphServer(t, c.single)
	cluster := graphServer(t, limitedQuerier(t, c.owners()))
	// Over 1 hour or 2; the graph's own step, the storage step.
	window := func(q string, hours int64) []string {
		return []string{"q", q, "format", "json", "s", fmt.Sprint(dataNow - hours*3600_000), "e", fmt.Sprint(dataNow), "tz", "UTC"}
	}
	for _, tc := range []struct {
		q     string
		hours int64
		code  int
	}{
		{"name,lat,:eq,:sum", 1, 422},                    // 40 series
		{"name,lat,:eq,(,app,),:by", 1, 422},             // 40 series, grouped
		{"name,lat,:eq,(,50,90,),:percentiles", 1, 422},  // 40 bucket series
		{"name,req,:eq,:sum", 2, 422},                    // 3 600 datapoints
		{"name,req,:eq,(,app,node,),:by", 2, 422},        // 3 600 datapoints, every series
		{"name,req,:eq,:sum", 1, 200},                    // 1 800 datapoints of 30 series
		{"name,req,:eq,(,app,),:by", 1, 200},             // the same, grouped
		{"name,lat,:eq,app,app-1,:eq,:and,:max", 1, 200}, // 20 series
	} {
		code, _, want := get(t, single, "/api/v1/graph", window(tc.q, tc.hours)...)
		if code != tc.code {
			t.Fatalf("single node: %s over %dh: %d %s, want %d", tc.q, tc.hours, code, want, tc.code)
		}
		code, h, got := get(t, cluster, "/api/v1/graph", window(tc.q, tc.hours)...)
		if code != tc.code || got != want || h.Get("X-Sextant-Partial") != "" {
			t.Errorf("query node: %s over %dh: %d partial=%q\n got %.300s\nwant %.300s", tc.q, tc.hours, code, h.Get("X-Sextant-Partial"), got, want)
		}
	}
	// The Prometheus series API: max-series-per-query on the total too.
	for _, tc := range []struct {
		match string
		code  int
	}{{`{__name__="lat"}`, 422}, {`{__name__="req"}`, 200}} {
		ps := []string{"match[]", tc.match, "start", fmt.Sprint(dataStart / 1000), "end", fmt.Sprint(dataNow / 1000)}
		code, _, want := get(t, single, "/api/v1/series", ps...)
		if code != tc.code {
			t.Fatalf("single node: series %s: %d %s, want %d", tc.match, code, want, tc.code)
		}
		if code, _, got := get(t, cluster, "/api/v1/series", ps...); code != tc.code || got != want {
			t.Errorf("query node: series %s: %d\n got %.300s\nwant %.300s", tc.match, code, got, want)
		}
	}
	// One node answering for every partition holds the whole total in its
	// share: it refuses at once, by the budget the query node sent, and
	// the answer is still the single node's.
	one := graphServer(t, limitedQuerier(t, onlyOwner{c.owners().nodes[0]}))
	for _, q := range []string{"name,lat,:eq,:sum", "name,req,:eq,(,app,),:by"} {
		_, _, want := get(t, single, "/api/v1/graph", window(q, 2)...)
		if code, _, got := get(t, one, "/api/v1/graph", window(q, 2)...); code != 422 || got != want {
			t.Errorf("one node for all: %s: %d\n got %.300s\nwant %.300s", q, code, got, want)
		}
	}
}

// blockingReads is a store that, once a fetch is admitted, never finishes
// reading: only the end of the request ends it.
type blockingReads struct {
	tsdb.Querier
	admitted atomic.Int32
	reading  sync.WaitGroup // shares admitted and not ended
}

func (s *blockingReads) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	admit := req.Admit
	req.Admit = func(c tsdb.Cost) error {
		// Counted before the cost goes out, so that the query node's
		// answer, which may follow the cost at once, finds it counted.
		s.reading.Add(1)
		defer s.reading.Done()
		if admit != nil {
			if err := admit(c); err != nil {
				return err
			}
		}
		s.admitted.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Querier.Fetch(ctx, req)
}

// TestLimitsStopEarly: a query over the limits on the total is refused as
// soon as the store nodes told what their shares cost, while they would
// still be reading: no node's read is waited for.
func TestLimitsStopEarly(t *testing.T) {
	t.Parallel()
	stores := make([]*blockingReads, numNodes)
	c := newTestClusterOpts(t, clusterOpts{limits: testLimits, handler: func(i int, o *fanout.HandlerOptions) {
		stores[i] = &blockingReads{Querier: o.Querier}
		o.Querier = stores[i]
	}})
	fan := limitedQuerier(t, c.owners())
	req := tsdb.FetchRequest{Query: tags.Eq("name", "lat"), Start: dataNow - 3600_000, End: dataNow, Step: step, Aggregation: tsdb.AggSum}
	want, err := c.single.Fetch(context.Background(), req)
	var wantLE *tsdb.LimitError
	if !errors.As(err, &wantLE) {
		t.Fatalf("single store: %v, %v; want a limit", want, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = fan.Fetch(ctx, req)
	var le *tsdb.LimitError
	if !errors.As(err, &le) || *le != *wantLE {
		t.Fatalf("Fetch = %v, want %v", err, wantLE)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refused after %v: the reads were waited for", d)
	}
	for i, s := range stores {
		if s.admitted.Load() == 0 {
			t.Errorf("store %d was never admitted a share", i)
		}
	}
	// The refusal ended the reads: the nodes' requests were cancelled.
	ended := make(chan struct{})
	go func() {
		for _, s := range stores {
			s.reading.Wait()
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Error("the stores still read their shares 10 s after the refusal")
	}
}

// TestLimitsFailover: the shares of a node that fails after telling its
// cost go to the replicas, whose costs replace it: a query within the
// limits is answered in full, once.
func TestLimitsFailover(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	c := newTestClusterOpts(t, clusterOpts{limits: testLimits, handler: func(i int, o *fanout.HandlerOptions) {
		if i == 1 {
			o.Querier = failingReads{o.Querier, &fail}
		}
	}})
	fan := limitedQuerier(t, c.owners())
	single := graphServer(t, c.single)
	cluster := graphServer(t, fan)
	q := []string{"q", "name,req,:eq,(,app,),:by", "format", "json", "s", fmt.Sprint(dataNow - 3600_000), "e", fmt.Sprint(dataNow)}
	_, _, want := get(t, single, "/api/v1/graph", q...)
	code, h, got := get(t, cluster, "/api/v1/graph", q...)
	if code != 200 || got != want || h.Get("X-Sextant-Partial") != "" {
		t.Errorf("failover after a cost: %d partial=%q\n got %.300s\nwant %.300s", code, h.Get("X-Sextant-Partial"), got, want)
	}
}

// failingReads fails every fetch after admitting it, while fail is set.
type failingReads struct {
	tsdb.Querier
	fail *atomic.Bool
}

func (s failingReads) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	admit := req.Admit
	req.Admit = func(c tsdb.Cost) error {
		if admit != nil {
			if err := admit(c); err != nil {
				return err
			}
		}
		if s.fail.Load() {
			return errors.New("disk on fire")
		}
		return nil
	}
	return s.Querier.Fetch(ctx, req)
}
