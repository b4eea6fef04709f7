package lib

import (
	"sync"
	"time"
)

// LongTaskTimer tracks tasks that run for a long time (batch jobs,
// migrations): each step it publishes how many are in flight
// (statistic=activeTasks) and for how long they have run in total
// (statistic=duration, seconds), both gauges, so a stuck task shows while
// it is stuck rather than when it ends.
type LongTaskTimer struct {
	meterBase
	clock func() time.Time
	mu    struct {
		sync.Mutex
		next   int64
		active map[int64]time.Time
		ended  bool // a task ended since the last step
	}
}

func newLongTaskTimer(id Id, clock func() time.Time) *LongTaskTimer {
	t := &LongTaskTimer{meterBase: meterBase{id: id}, clock: clock}
	t.mu.active = map[int64]time.Time{}
	return t
}

// Task is a running task of a LongTaskTimer.
type Task struct {
	t  *LongTaskTimer
	id int64
}

// Start begins a task.
func (t *LongTaskTimer) Start() Task {
	t.mu.Lock()
	t.mu.next++
	id := t.mu.next
	t.mu.active[id] = t.clock()
	t.mu.Unlock()
	t.touch(t)
	return Task{t: t, id: id}
}

// Stop ends the task and returns how long it ran; stopping twice returns 0.
func (k Task) Stop() time.Duration {
	if k.t == nil {
		return 0
	}
	t := k.t
	t.mu.Lock()
	defer t.mu.Unlock()
	start, ok := t.mu.active[k.id]
	if !ok {
		return 0
	}
	delete(t.mu.active, k.id)
	t.mu.ended = true
	return t.clock().Sub(start)
}

// ActiveTasks returns the number of tasks in flight.
func (t *LongTaskTimer) ActiveTasks() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mu.active)
}

// Duration returns the summed run time of the tasks in flight.
func (t *LongTaskTimer) Duration() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	var d time.Duration
	for _, s := range t.mu.active {
		d += now.Sub(s)
	}
	return d
}

func (t *LongTaskTimer) measure(e *emitter) bool {
	n, d := t.ActiveTasks(), t.Duration()
	t.mu.Lock()
	active := n > 0 || t.mu.ended
	t.mu.ended = false
	t.mu.Unlock()
	e.gauge(t.id, StatActiveTasks, float64(n))
	e.gauge(t.id, StatDuration, d.Seconds())
	return active
}
