package fanout

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/lib"
)

// TestEndListerShares: strong reads that arrive while a listing runs wait
// for the next one and share it: a burst of reads costs two listings, and
// no read takes a listing that started before it arrived.
func TestEndListerShares(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	release := make(chan struct{})
	started := make(chan int64, 10)
	l := newEndLister(func(ctx context.Context, log Log) ([]int64, error) {
		n := calls.Add(1)
		started <- n
		<-release
		return []int64{n}, nil // the listing's number as its offset
	}, lib.NewRegistry(lib.RegistryOptions{}).Counter("listings"))
	defer l.close()
	// The first read starts listing 1 and holds it.
	first := make(chan []int64, 1)
	go func() {
		ends, _ := l.get(context.Background(), LogMetrics)
		first <- ends
	}()
	if n := <-started; n != 1 {
		t.Fatalf("listing %d started first", n)
	}
	// 50 reads arrive while listing 1 runs: they must not take it.
	var wg sync.WaitGroup
	got := make([][]int64, 50)
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = l.get(context.Background(), LogMetrics); err != nil {
				t.Error(err)
			}
		})
	}
	// Once every later read has joined the next listing, listing 1 ends
	// and listing 2 starts; the first read has listing 1's.
	waitJoined(t, l, LogMetrics, len(got))
	release <- struct{}{}
	if ends := <-first; ends[0] != 1 {
		t.Errorf("the first read got listing %d", ends[0])
	}
	if n := <-started; n != 2 {
		t.Fatalf("listing %d started second", n)
	}
	release <- struct{}{}
	wg.Wait()
	for i, ends := range got {
		if ends[0] != 2 {
			t.Errorf("read %d arrived during listing 1 and got listing %d", i, ends[0])
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d listings for 51 reads, want 2", n)
	}
	// The spans log lists on its own.
	go func() { <-started; release <- struct{}{} }()
	if ends, err := l.get(context.Background(), LogSpans); err != nil || ends[0] != 3 {
		t.Errorf("spans: %v, %v", ends, err)
	}
}

// waitJoined waits until n reads joined the next listing of log.
func waitJoined(t *testing.T, l *endLister, log Log, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		next := l.mu.logs[log].next
		ok := next != nil && next.waiters == n
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reads did not join the next listing within 10 s", n)
		}
		time.Sleep(time.Millisecond) // polling: the reads' goroutines must reach get
	}
}

// TestEndListerErrors: a read whose context ends stops waiting, the
// listing goes on for the others; a listing's error is every waiter's.
func TestEndListerErrors(t *testing.T) {
	t.Parallel()
	errKafka := errors.New("kafka down")
	release := make(chan struct{})
	l := newEndLister(func(ctx context.Context, log Log) ([]int64, error) {
		<-release
		return nil, errKafka
	}, lib.NewRegistry(lib.RegistryOptions{}).Counter("listings"))
	defer l.close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := l.get(ctx, LogMetrics); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled read: %v", err)
	}
	go func() { _, err := l.get(context.Background(), LogMetrics); done <- err }()
	close(release)
	if err := <-done; !errors.Is(err, errKafka) {
		t.Errorf("a read of a failed listing: %v", err)
	}
}

// TestEndListerClose: close cancels a listing under way, and the reads
// waiting on it fail rather than hang.
func TestEndListerClose(t *testing.T) {
	t.Parallel()
	l := newEndLister(func(ctx context.Context, log Log) ([]int64, error) {
		<-ctx.Done() // Kafka does not answer
		return nil, ctx.Err()
	}, lib.NewRegistry(lib.RegistryOptions{}).Counter("listings"))
	done := make(chan error, 1)
	go func() { _, err := l.get(context.Background(), LogSpans); done <- err }()
	waitRunning(t, l, LogSpans)
	l.close()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("a read of a listing cancelled by close: %v", err)
	}
}

// waitRunning waits until a listing of log runs.
func waitRunning(t *testing.T, l *endLister, log Log) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		ok := l.mu.logs[log].running != nil
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no listing started within 10 s")
		}
		time.Sleep(time.Millisecond) // polling: the read's goroutine must reach get
	}
}
