package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	step       = int64(10_000)
	now        = int64(1_700_006_400_000) // every clock of these tests
	partitions = 8
)

func clock() int64 { return now }

// newCluster starts a kfake cluster of 3 brokers with the topics created.
func newCluster(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := EnsureTopics(ctx, brokers, "test", partitions)
	if err != nil || n != partitions {
		t.Fatalf("EnsureTopics = %d, %v", n, err)
	}
	// Again: the topics exist, and keep their partitions.
	if n, err := EnsureTopics(ctx, brokers, "test", 3); err != nil || n != partitions {
		t.Fatalf("EnsureTopics on existing topics = %d, %v", n, err)
	}
	return c, brokers
}

func newProducer(t *testing.T, brokers []string, mod func(*ProducerOptions)) *Producer {
	t.Helper()
	o := ProducerOptions{Brokers: brokers, Prefix: "test", Partitions: partitions, Now: clock, DeliveryTimeout: 2 * time.Second}
	if mod != nil {
		mod(&o)
	}
	p, err := NewProducer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// node is a store node's local stores.
type node struct {
	store *db.DB
	spans *spanstore.Store
	kv    tsdb.KV
}

func newNode(t *testing.T, kv tsdb.KV) *node {
	t.Helper()
	store, err := db.Open("", db.Options{Step: step, Now: clock, MaintenanceInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	spans, err := spanstore.Open(t.TempDir(), spanstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spans.Close() })
	if kv == nil {
		kv = tsdbtest.NewKV()
	}
	return &node{store: store, spans: spans, kv: kv}
}

// consume runs a consumer on n until the returned stop is called.
func consume(t *testing.T, brokers []string, n *node, assign <-chan []int, reg *lib.Registry) (*Consumer, func()) {
	t.Helper()
	c, err := NewConsumer(ConsumerOptions{Brokers: brokers, Prefix: "test", Partitions: partitions,
		Appender: n.store, Traces: n.spans, KV: n.kv, Assign: assign, PollWait: 100 * time.Millisecond, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return c, stop
}

// waitCaughtUp waits until c applied every partition in want to its end.
func waitCaughtUp(t *testing.T, c *Consumer, brokers []string, want []int) {
	t.Helper()
	ends := endOffsets(t, brokers)
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := 0
		for _, pr := range c.Progress() {
			for _, p := range want {
				if pr.Partition == p && pr.Applied >= ends[pr.Topic][p] {
					done++
				}
			}
		}
		if done == 2*len(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer not caught up to %v: %+v", ends, c.Progress())
		}
		time.Sleep(20 * time.Millisecond) // polling another component's progress
	}
}

// batchOf returns a batch of datapoints of every data source type: n
// series per type, samples at t.
func batchOf(n int, t int64, v float64) *tsdb.Batch {
	b := &tsdb.Batch{}
	for _, ds := range []string{"gauge", "rate", "counter", "sum"} {
		for i := range n {
			b.Points = append(b.Points, tsdb.Datapoint{
				Tags: tags.New("name", "m."+ds, "atlas.dstype", ds, "node", fmt.Sprintf("i-%04d", i)),
				T:    t, V: v + float64(i),
			})
		}
	}
	return b
}

// answer is everything a store holds, per series, at the test step.
func answer(t *testing.T, q tsdb.Querier) *tsdb.SeriesSet {
	t.Helper()
	ss, err := q.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Has("name"),
		Start: now - 20*step, End: now + 2*step, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	ss.Stats = tsdb.Stats{}
	return ss
}

func nanEqual() cmp.Option {
	return cmp.Comparer(func(a, b float64) bool { return a == b || a != a && b != b })
}

func endOffsets(t *testing.T, brokers []string) map[string][]int64 {
	t.Helper()
	ends, err := EndOffsets(context.Background(), brokers, "test")
	if err != nil {
		t.Fatal(err)
	}
	return ends
}

// TestProduceConsume: datapoints and spans through the log give the same
// answers as the same writes to a single node.
func TestProduceConsume(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	reg := lib.NewRegistry(lib.RegistryOptions{})
	p := newProducer(t, brokers, func(o *ProducerOptions) { o.Registry = reg })
	single := newNode(t, nil)
	ctx := context.Background()
	for i := range 5 {
		ts := now - int64(5-i)*step - 1234
		for _, a := range []tsdb.Appender{p, single.store} {
			b := batchOf(50, ts, float64(10*i))
			if err := a.Append(ctx, b); err != nil {
				t.Fatalf("Append: %v", err)
			}
			if len(b.Rejected) != 0 {
				t.Fatalf("rejected %v", b.Rejected)
			}
			for _, pt := range b.Points {
				if pt.Ref == 0 {
					t.Fatalf("Append left a zero Ref")
				}
			}
		}
	}
	td := testTraces(20)
	if err := p.WriteTraces(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := single.spans.WriteTraces(ctx, td); err != nil {
		t.Fatal(err)
	}

	cluster := newNode(t, nil)
	c, _ := consume(t, brokers, cluster, nil, reg)
	waitCaughtUp(t, c, brokers, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if diff := cmp.Diff(answer(t, single.store), answer(t, cluster.store), nanEqual()); diff != "" {
		t.Errorf("cluster answer differs from the single node's (-single +cluster):\n%s", diff)
	}
	for i := range 20 {
		id := traceID(i)
		want, err1 := single.spans.GetTrace(ctx, id)
		got, err2 := cluster.spans.GetTrace(ctx, id)
		if err1 != nil || err2 != nil || len(got.Spans) != len(want.Spans) || len(got.Spans) != 3 {
			t.Errorf("trace %v: %d spans (%v), single node %d (%v)", id, len(got.Spans), err2, len(want.Spans), err1)
		}
	}
	if got := reg.Counter("sextant.cluster.produced", "unit", "datapoints").Count(); got != 5*200 {
		t.Errorf("produced datapoints = %v, want 1000", got)
	}
	if got := reg.Counter("sextant.cluster.consumed", "unit", "datapoints").Count(); got != 5*200 {
		t.Errorf("consumed datapoints = %v, want 1000", got)
	}
}

// TestValidation: what the store would reject and the ingest node can know
// is rejected before Kafka, with the store's reasons.
func TestValidation(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	b := &tsdb.Batch{Points: []tsdb.Datapoint{
		{Tags: tags.New("name", "ok"), T: now},
		{Tags: tags.New("name", "old"), T: now - 3600_000 - 1},
		{Tags: tags.New("name", "future"), T: now + 300_001},
		{Tags: tags.New("app", "x"), T: now},
		{Ref: 12345, T: now}, // a ref never handed out
	}}
	if err := p.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := []tsdb.Rejection{{Index: 1, Reason: tsdb.TooOld}, {Index: 2, Reason: tsdb.FromFuture}, {Index: 3, Reason: tsdb.MissingName}, {Index: 4, Reason: tsdb.MissingName}}
	if diff := cmp.Diff(want, b.Rejected); diff != "" {
		t.Errorf("Rejected (-want +got):\n%s", diff)
	}
	// The ref of the accepted point names its series from now on.
	ref := b.Points[0].Ref
	b2 := &tsdb.Batch{Points: []tsdb.Datapoint{{Ref: ref, T: now, V: 2}}}
	if err := p.Append(context.Background(), b2); err != nil || len(b2.Rejected) != 0 {
		t.Errorf("Append by ref = %v, rejected %v", err, b2.Rejected)
	}
}

// TestReplay: a consumer stopped and started again resumes at its kept
// offsets; a new store node with no offsets replays the log from the start.
func TestReplay(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	single := newNode(t, nil)
	ctx := context.Background()
	write := func(i int) {
		ts := now - int64(10-i)*step
		for _, a := range []tsdb.Appender{p, single.store} {
			if err := a.Append(ctx, batchOf(20, ts, float64(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := []int{0, 1, 2, 3, 4, 5, 6, 7}
	n := newNode(t, nil)
	write(0)
	write(1)
	c, stop := consume(t, brokers, n, nil, nil)
	waitCaughtUp(t, c, brokers, all)
	stop()
	write(2)
	write(3)
	c, _ = consume(t, brokers, n, nil, nil)
	waitCaughtUp(t, c, brokers, all)
	if diff := cmp.Diff(answer(t, single.store), answer(t, n.store), nanEqual()); diff != "" {
		t.Errorf("after a restart (-single +cluster):\n%s", diff)
	}
	fresh := newNode(t, nil)
	c2, _ := consume(t, brokers, fresh, nil, nil)
	waitCaughtUp(t, c2, brokers, all)
	if diff := cmp.Diff(answer(t, single.store), answer(t, fresh.store), nanEqual()); diff != "" {
		t.Errorf("a new node replaying the log (-single +cluster):\n%s", diff)
	}
}

// TestIdempotent: the same records applied again change no answer: a
// partition taken away and given back resumes where it was, and a batch
// decoded from a record and appended twice (a crash between the store's
// sync and the offset's) leaves gauges, counters and rates as they were.
func TestIdempotent(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	ctx := context.Background()
	single := newNode(t, nil)
	write := func(i int) {
		for _, a := range []tsdb.Appender{p, single.store} {
			if err := a.Append(ctx, batchOf(20, now-int64(8-i)*step, float64(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 {
		write(i)
	}
	all := []int{0, 1, 2, 3, 4, 5, 6, 7}
	n := newNode(t, nil)
	assign := make(chan []int)
	c, _ := consume(t, brokers, n, assign, nil)
	assign <- all
	waitCaughtUp(t, c, brokers, all)
	// Partitions 4-7 go away, records arrive for them, and they come back:
	// the consumer resumes them at their kept offsets, applying each
	// record once.
	assign <- []int{0, 1, 2, 3}
	write(3)
	assign <- all
	write(4)
	waitCaughtUp(t, c, brokers, all)
	if diff := cmp.Diff(answer(t, single.store), answer(t, n.store), nanEqual()); diff != "" {
		t.Errorf("after a reassignment (-single +cluster):\n%s", diff)
	}

	// The same record applied twice, straight to a store.
	store := newNode(t, nil).store
	var recs [][]byte
	for i := range 3 {
		b := &tsdb.Batch{}
		for _, ds := range []string{"gauge", "counter", "rate"} {
			for j := range 10 {
				b.Points = append(b.Points, tsdb.Datapoint{Tags: tags.New("name", ds, "atlas.dstype", ds, "n", fmt.Sprint(j)),
					T: now - int64(3-i)*step - 777, V: float64(100*i + j)})
			}
		}
		recs = append(recs, AppendDatapoints(nil, b.Points))
	}
	apply := func(rec []byte) {
		var b tsdb.Batch
		if err := DecodeDatapoints(rec, &b); err != nil {
			t.Fatal(err)
		}
		if err := store.Append(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	for _, rec := range recs {
		apply(rec)
	}
	once := answer(t, store)
	apply(recs[2])
	if diff := cmp.Diff(once, answer(t, store), nanEqual()); diff != "" {
		t.Errorf("the last record applied twice (-once +twice):\n%s", diff)
	}
}

// TestBrokerDown: with a broker of three gone, ingest keeps working on the
// others (kfake moves its partitions' leadership, as Kafka elects an
// in-sync replica).
func TestBrokerDown(t *testing.T) {
	t.Parallel()
	c, brokers := newCluster(t)
	p := newProducer(t, brokers, func(o *ProducerOptions) { o.DeliveryTimeout = 20 * time.Second })
	ctx := context.Background()
	if err := p.Append(ctx, batchOf(20, now, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNode(c.LeaderFor(MetricsTopic("test"), 0)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := p.Append(ctx, batchOf(20, now-int64(i)*step, 2)); err != nil {
			t.Fatalf("Append with a broker down: %v", err)
		}
	}
	if err := p.WriteTraces(ctx, testTraces(10)); err != nil {
		t.Fatalf("WriteTraces with a broker down: %v", err)
	}
	ends := endOffsets(t, []string{brokers[0], brokers[1], brokers[2]})
	total := int64(0)
	for _, e := range ends[MetricsTopic("test")] {
		total += e
	}
	if total < 6 {
		t.Errorf("metrics topic holds %d records, want at least 6", total)
	}
}

// TestKafkaDown: with every broker gone, a write fails within the delivery
// timeout with ErrUnavailable; nothing is acknowledged.
func TestKafkaDown(t *testing.T) {
	t.Parallel()
	c, brokers := newCluster(t)
	p := newProducer(t, brokers, func(o *ProducerOptions) { o.DeliveryTimeout = time.Second })
	ctx := context.Background()
	if err := p.Append(ctx, batchOf(2, now, 1)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	start := time.Now()
	err := p.Append(ctx, batchOf(2, now, 1))
	if !errors.Is(err, tsdb.ErrUnavailable) {
		t.Errorf("Append with Kafka down = %v, want ErrUnavailable", err)
	}
	// The delivery timeout is 1 s; the client alone took 7 s (21 s under
	// load) with every broker gone, before produce bounded its own wait.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Append took %v to fail", d)
	}
	if err := p.WriteTraces(ctx, testTraces(1)); !errors.Is(err, tracing.ErrUnavailable) {
		t.Errorf("WriteTraces with Kafka down = %v, want ErrUnavailable", err)
	}
}

// TestSplitTraces: every span lands in its trace's partition, with its
// resource and scope.
func TestSplitTraces(t *testing.T) {
	t.Parallel()
	td := testTraces(50)
	parts := splitTraces(td, partitions)
	total := 0
	for part, pt := range parts {
		total += pt.SpanCount()
		rss := pt.ResourceSpans()
		for i := range rss.Len() {
			rs := rss.At(i)
			if _, ok := rs.Resource().Attributes().Get("service.name"); !ok {
				t.Errorf("partition %d: a resource lost its attributes", part)
			}
			for j := range rs.ScopeSpans().Len() {
				ss := rs.ScopeSpans().At(j)
				if ss.Scope().Name() != "test" {
					t.Errorf("partition %d: scope %q", part, ss.Scope().Name())
				}
				for k := range ss.Spans().Len() {
					if got := tracing.TracePartition(ss.Spans().At(k).TraceID(), partitions); got != part {
						t.Errorf("span of partition %d in record of partition %d", got, part)
					}
				}
			}
		}
	}
	if total != td.SpanCount() {
		t.Errorf("split holds %d spans, want %d", total, td.SpanCount())
	}
}

func traceID(i int) tracing.TraceID {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	var id tracing.TraceID
	for j := range id {
		id[j] = byte(r.Uint32())
	}
	return id
}

// testTraces returns n traces of three spans of two services.
func testTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, svc := range []string{"api", "db"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("test")
		for i := range n {
			for j := range map[string]int{"api": 2, "db": 1}[svc] {
				s := ss.Spans().AppendEmpty()
				s.SetTraceID(pcommon.TraceID(traceID(i)))
				s.SetSpanID(pcommon.SpanID{byte(i), byte(j), 7: byte(len(svc))})
				s.SetName(svc + ".op")
				start := time.UnixMilli(now - 1000)
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
			}
		}
	}
	return td
}

// TestAssignedOnly: a store node assigned some partitions holds exactly
// the series and traces of those partitions; closing Assign keeps the
// assignment.
func TestAssignedOnly(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	ctx := context.Background()
	b := batchOf(50, now-step, 1)
	if err := p.Append(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteTraces(ctx, testTraces(40)); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, nil)
	assign := make(chan []int)
	c, _ := consume(t, brokers, n, assign, nil)
	mine := []int{1, 6}
	assign <- mine
	close(assign)
	waitCaughtUp(t, c, brokers, mine)
	got := map[string]bool{}
	for _, s := range answer(t, n.store).Series {
		got[s.Tags.String()] = true
	}
	want := 0
	for _, pt := range b.Points {
		part := tags.PartitionOf(pt.Tags, partitions)
		if part == 1 || part == 6 {
			want++
			// A counter's first sample is no increase yet: no values.
			if v, _ := pt.Tags.Get("atlas.dstype"); v != "counter" && !got[pt.Tags.String()] {
				t.Errorf("series %v of partition %d missing", pt.Tags, part)
			}
		}
	}
	if n := n.store.Head().NumSeries(); n != want || want == 0 {
		t.Errorf("store holds %d series, want the %d of partitions %v", n, want, mine)
	}
	for i := range 40 {
		id := traceID(i)
		_, err := n.spans.GetTrace(ctx, id)
		part := tracing.TracePartition(id, partitions)
		if mineTrace := part == 1 || part == 6; mineTrace != (err == nil) {
			t.Errorf("trace %v of partition %d: GetTrace error %v", id, part, err)
		}
	}
	prs := c.Progress()
	if len(prs) != 4 {
		t.Errorf("Progress = %+v, want 2 topics × 2 partitions", prs)
	}
	for _, pr := range prs {
		if pr.Applied > 0 && (pr.Time.IsZero() || time.Since(pr.Time) > time.Minute) {
			t.Errorf("Progress %+v: the last record's time is not the produce time", pr)
		}
	}
}
