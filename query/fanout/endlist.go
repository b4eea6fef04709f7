package fanout

import (
	"context"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/lib"
)

// endListTimeout bounds one shared listing of the log's end offsets: the
// reads waiting on it give up sooner when their own time runs out.
const endListTimeout = 10 * time.Second

// endLister shares the listings of the log's end offsets among the strong
// reads that arrive together. A read may take only a listing that started
// after it arrived: a listing already under way may have been answered
// before a write that Kafka acknowledged before the read, which the read
// must see. So a read arriving while a listing runs waits for the next
// one, which starts when the running one ends and serves every read that
// arrived in between. A burst of strong reads (the alert rules of a step,
// each a fetch) then costs about two listings rather than one each: 100
// concurrent listings took 61 ms and 36 ms of CPU on kfake, in-process
// (docs/benchmarks.md, "Cluster limits").
//
// The listings run on goroutines of the lister, each ending within
// endListTimeout; close cancels them and waits for them. Safe for
// concurrent use.
type endLister struct {
	list     func(ctx context.Context, log Log) ([]int64, error)
	listings *lib.Counter
	// base is the parent of the listings' contexts, cancelled by close.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     struct {
		sync.Mutex
		logs [2]struct {
			running, next *endListing // next starts when running ends
		}
	}
}

// endListing is one listing of a log's end offsets; ends and err are set
// before done is closed.
type endListing struct {
	done    chan struct{}
	ends    []int64
	err     error
	waiters int // reads that take it (under endLister.mu)
}

// newEndLister returns a lister over list.
func newEndLister(list func(ctx context.Context, log Log) ([]int64, error), listings *lib.Counter) *endLister {
	l := &endLister{list: list, listings: listings}
	l.base, l.cancel = context.WithCancel(context.Background())
	return l
}

// get returns end offsets of log listed after the call, shared with the
// other reads that wait for the same listing. The caller does not modify
// the slice.
func (l *endLister) get(ctx context.Context, log Log) ([]int64, error) {
	l.mu.Lock()
	lg := &l.mu.logs[log]
	var mine *endListing
	switch {
	case lg.running == nil:
		mine = &endListing{done: make(chan struct{})}
		lg.running = mine
		l.startLocked(log, mine)
	case lg.next != nil:
		mine = lg.next
	default:
		mine = &endListing{done: make(chan struct{})}
		lg.next = mine
	}
	mine.waiters++
	l.mu.Unlock()
	select {
	case <-mine.done:
		return mine.ends, mine.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startLocked lists log's end offsets into li on a goroutine of the
// lister; when it is done, the next listing, if reads wait for one,
// starts.
func (l *endLister) startLocked(log Log, li *endListing) {
	l.listings.Increment()
	l.wg.Go(func() {
		// Not the context of the read that started it: the others
		// waiting on it would fail with it.
		ctx, cancel := context.WithTimeout(l.base, endListTimeout)
		li.ends, li.err = l.list(ctx, log)
		cancel()
		close(li.done)
		l.mu.Lock()
		defer l.mu.Unlock()
		lg := &l.mu.logs[log]
		lg.running, lg.next = lg.next, nil
		if lg.running != nil {
			l.startLocked(log, lg.running)
		}
	})
}

// close cancels the listings under way and waits for them.
func (l *endLister) close() {
	l.cancel()
	l.wg.Wait()
}
