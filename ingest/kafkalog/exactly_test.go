package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

// Applying a record twice changes nothing (docs/cluster.md, "Delivery"):
// the two ways a record could count twice, each against a single node fed
// the same writes.

// seriesIn returns a series of data source type ds whose partition is p:
// the tests put every series of a write in one partition, so that a
// write is one record.
func seriesIn(p int, name, ds string) tags.Set {
	for i := 0; ; i++ {
		s := tags.New("name", name, "atlas.dstype", ds, "i", fmt.Sprint(i))
		if tags.PartitionOf(s, partitions) == p {
			return s
		}
	}
}

// exactlyWrites are two writes, all of their series in partition 5: the
// first gives every series a sample; the second adds to a sum, gives a
// rate two samples in order and another rate a sample older than its
// last (out of order), and carries a trigger series.
func exactlyWrites() []*tsdb.Batch {
	const p = 5
	sum, r1, r2 := seriesIn(p, "x.sum", "sum"), seriesIn(p, "x.rate", "rate"), seriesIn(p, "x.late", "rate")
	trigger := seriesIn(p, "x.trigger", "gauge")
	t0 := now - 6*step
	return []*tsdb.Batch{
		{Points: []tsdb.Datapoint{
			{Tags: sum, T: t0 + 1000, V: 3},
			{Tags: r1, T: t0 + 2000, V: 10},
			{Tags: r2, T: t0 + 4*step + 1000, V: 7},
		}},
		{Points: []tsdb.Datapoint{
			{Tags: sum, T: t0 + 2000, V: 4},
			{Tags: sum, T: t0 + step + 500, V: 5},
			{Tags: r1, T: t0 + step + 3000, V: 20},
			{Tags: r1, T: t0 + 2*step + 7000, V: 30},
			{Tags: r2, T: t0 + 2*step + 1000, V: 9}, // older than its last: out of order
			{Tags: trigger, T: t0, V: 1},
		}},
	}
}

// clonePoints copies points for another appender, without the refs the
// first one gave them.
func clonePoints(points []tsdb.Datapoint) *tsdb.Batch {
	b := &tsdb.Batch{Points: append([]tsdb.Datapoint(nil), points...)}
	for i := range b.Points {
		b.Points[i].Ref = 0
	}
	return b
}

func newRNG() *rand.Rand { return rand.New(rand.NewPCG(1, 16)) }

func hasName(points []tsdb.Datapoint, name string) bool {
	for _, pt := range points {
		if pt.Tags.Name() == name {
			return true
		}
	}
	return false
}

// TestCrashBeforeOffset: a store node dies after the store made a batch
// durable and before the offset was kept in KV (the image of its disk is
// taken there, as a kill would leave it). Started again on that disk, it
// resumes after the batch (the store's mark), so the sum and the rates
// hold what a single node fed the same writes holds: the batch counted
// once. Before marks, the batch was applied again: the sum twice, the
// rate's first sample overwritten by its raw value.
func TestCrashBeforeOffset(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	ctx := context.Background()
	single := newNode(t, nil)
	writes := exactlyWrites()
	for _, w := range writes {
		if err := single.store.Append(ctx, clonePoints(w.Points)); err != nil {
			t.Fatal(err)
		}
	}

	fs := vfs.NewCrashableMem()
	opts := db.Options{Step: step, Now: clock, MaintenanceInterval: 1 << 40, Fsync: wal.SyncBatch, FS: fs, Marks: true}
	store, err := db.Open("d", opts)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{store: store, spans: newNode(t, nil).spans, kv: store.KV()}
	crashed := make(chan *vfs.MemFS, 1)
	c, err := NewConsumer(ConsumerOptions{Brokers: brokers, Prefix: "test", Partitions: partitions,
		Appender: n.store, Traces: n.spans, KV: n.kv, PollWait: 100 * time.Millisecond,
		AfterApply: func(a Applied) {
			if hasName(a.Points, "x.trigger") {
				// The process dies here: what it wrote to its files stays.
				crashed <- fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: newRNG()})
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	// Write one at a time, each applied before the next: the second is
	// then a fetch of its own.
	if err := p.Append(ctx, writes[0]); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, c, brokers, []int{5})
	if err := p.Append(ctx, writes[1]); err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, crashed, cancel, done, store)

	// The restart, on the image.
	opts.FS = img
	store, err = db.Open("d", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if v, err := store.KV().Get(ctx, offsetKey(MetricsTopic("test"), 5)); err != nil || len(v) != 8 {
		t.Fatalf("the image keeps no offset of the first write (%v): the crash came too early", err)
	}
	if next, ok := store.Marked(MetricsTopic("test"), 5); !ok || next != 2 {
		t.Errorf("the store's mark = %d, %v; want 2 (both records applied)", next, ok)
	}
	restarted := &node{store: store, spans: newNode(t, nil).spans, kv: store.KV()}
	c2, _ := consume(t, brokers, restarted, nil, nil)
	waitCaughtUp(t, c2, brokers, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if diff := cmp.Diff(answer(t, single.store), answer(t, restarted.store), nanEqual()); diff != "" {
		t.Errorf("after a crash between the store's write and the offset's (-single +restarted):\n%s", diff)
	}
}

// TestProducerRetryOnce: a produce request Kafka applied but answered
// with a timeout (a lost answer) is sent again by the producer; the log
// holds the record once (the idempotent producer), and the store counts
// the sum once.
func TestProducerRetryOnce(t *testing.T) {
	t.Parallel()
	kc, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	ctx := context.Background()
	// The first write alone: its producer ID and sequence are set up.
	writes := exactlyWrites()
	if err := p.Append(ctx, writes[0]); err != nil {
		t.Fatal(err)
	}
	// The next produce of partition 5 is applied, and answered
	// REQUEST_TIMED_OUT as a broker that timed out waiting for its
	// replicas does: the producer retries it.
	fault := kc.Fault(kfake.Fault{Topic: MetricsTopic("test"), Partitions: []int32{5}, Err: kerr.RequestTimedOut, Count: 1})
	if err := p.Append(ctx, writes[1]); err != nil {
		t.Fatal(err)
	}
	if fault.Hits() != 1 {
		t.Fatalf("the fault answered %d requests, want 1", fault.Hits())
	}
	if got := endOffsets(t, brokers)[MetricsTopic("test")][5]; got != 2 {
		t.Errorf("partition 5 holds %d records after 2 writes, want 2", got)
	}
	single := newNode(t, nil)
	for _, w := range writes {
		if err := single.store.Append(ctx, clonePoints(w.Points)); err != nil {
			t.Fatal(err)
		}
	}
	n := newNode(t, nil)
	c, _ := consume(t, brokers, n, nil, nil)
	waitCaughtUp(t, c, brokers, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if diff := cmp.Diff(answer(t, single.store), answer(t, n.store), nanEqual()); diff != "" {
		t.Errorf("after a produce retried (-single +cluster):\n%s", diff)
	}
}

// TestNoMarks: a store on disk opened without marks answers
// tsdb.ErrNoMarks, and the consumer applies the log without them (at
// least once, with the offsets in KV), rather than retrying for ever.
func TestNoMarks(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t)
	p := newProducer(t, brokers, nil)
	ctx := context.Background()
	single := newNode(t, nil)
	for _, w := range exactlyWrites() {
		if err := single.store.Append(ctx, clonePoints(w.Points)); err != nil {
			t.Fatal(err)
		}
		if err := p.Append(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	store, err := db.Open(t.TempDir(), db.Options{Step: step, Now: clock, MaintenanceInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	n := &node{store: store, spans: newNode(t, nil).spans, kv: store.KV()}
	c, _ := consume(t, brokers, n, nil, nil)
	waitCaughtUp(t, c, brokers, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if diff := cmp.Diff(answer(t, single.store), answer(t, n.store), nanEqual()); diff != "" {
		t.Errorf("a store without marks (-single +cluster):\n%s", diff)
	}
	if _, ok := store.Marked(MetricsTopic("test"), 5); ok {
		t.Errorf("a store without Options.Marks holds a mark")
	}
}

// gate holds the answers of a broker while closed: its connections'
// writes wait, so the requests it reads are applied and their answers
// lost in time, as with a broker that hangs.
type gate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	closed bool
}

func (g *gate) set(closed bool) {
	g.mu.Lock()
	g.closed = closed
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gate) wait() {
	g.mu.Lock()
	for g.closed {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

type gatedListener struct {
	net.Listener
	g *gate
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatedConn{c, l.g}, nil
}

type gatedConn struct {
	net.Conn
	g *gate
}

func (c gatedConn) Write(p []byte) (int, error) {
	c.g.wait()
	return c.Conn.Write(p)
}

// TestAbandonedWrite: with the idempotent producer, a write whose broker
// hangs still fails within the delivery timeout (503), and its records,
// which the producer keeps and delivers once the broker answers again,
// are never reused by a later write: a write to another broker meanwhile
// succeeds (under -race, reusing them would race with the client), and
// the late records reach the log once, as they were written.
func TestAbandonedWrite(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	gates := map[string]*gate{}
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ListenFn(func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		g := &gate{}
		g.cond = sync.NewCond(&g.mu)
		mu.Lock()
		gates[ln.Addr().String()] = g
		mu.Unlock()
		return gatedListener{ln, g}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	brokers := kc.ListenAddrs()
	ctx := context.Background()
	if _, err := EnsureTopics(ctx, brokers, "test", partitions); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, brokers, func(o *ProducerOptions) { o.DeliveryTimeout = time.Second })
	write := func(part int, v float64) error {
		return p.Append(ctx, &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: seriesIn(part, "x.sum", "sum"), T: now - step, V: v}}})
	}
	if err := write(5, 1); err != nil {
		t.Fatal(err)
	}
	leader := kc.LeaderFor(MetricsTopic("test"), 5)
	other := 0
	for kc.LeaderFor(MetricsTopic("test"), int32(other)) == leader {
		other++
	}
	g := gates[brokers[leader]]
	g.set(true)
	t.Cleanup(func() { g.set(false) }) // before the cluster closes
	start := time.Now()
	if err := write(5, 2); !errors.Is(err, tsdb.ErrUnavailable) {
		t.Fatalf("a write to a hung broker = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a write to a hung broker took %v to fail, with a delivery timeout of 1 s", d)
	}
	if err := write(other, 3); err != nil {
		t.Fatalf("a write to another broker while one hangs: %v", err)
	}
	g.set(false)
	// The abandoned write reaches the log once, late.
	deadline := time.Now().Add(30 * time.Second)
	for endOffsets(t, brokers)[MetricsTopic("test")][5] < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling Kafka for the late record
	}
	if err := write(5, 4); err != nil {
		t.Fatalf("a write once the broker answers again: %v", err)
	}
	single := newNode(t, nil)
	for _, v := range []float64{1, 2, 4} {
		b := &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: seriesIn(5, "x.sum", "sum"), T: now - step, V: v}}}
		if err := single.store.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := single.store.Append(ctx, &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: seriesIn(other, "x.sum", "sum"), T: now - step, V: 3}}}); err != nil {
		t.Fatal(err)
	}
	if got := endOffsets(t, brokers)[MetricsTopic("test")][5]; got != 3 {
		t.Errorf("partition 5 holds %d records after 3 writes (one abandoned, delivered late), want 3", got)
	}
	n := newNode(t, nil)
	c, _ := consume(t, brokers, n, nil, nil)
	waitCaughtUp(t, c, brokers, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if diff := cmp.Diff(answer(t, single.store), answer(t, n.store), nanEqual()); diff != "" {
		t.Errorf("the log after an abandoned write (-single +cluster):\n%s", diff)
	}
}

// crashImage waits for the disk image the consumer's fault hook took when
// it applied the trigger, then stops the consumer (cancel, then its Run's
// result on done) and closes its store.
func crashImage(t *testing.T, crashed <-chan *vfs.MemFS, cancel context.CancelFunc, done <-chan error, store io.Closer) *vfs.MemFS {
	t.Helper()
	var img *vfs.MemFS
	select {
	case img = <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the trigger was never applied")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}
