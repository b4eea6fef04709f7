package main

import (
	"context"
	"sync"
)

// runGroup runs a node's actors together, in the manner of Prometheus's
// run.Group: every actor is an execute function that blocks until it is
// done and an interrupt function that makes it return. When the first actor
// returns, the group interrupts the others and waits for them.
//
// Unlike run.Group, interrupts go in reverse order of Add, each waiting for
// its actor to return before the next: the listeners, added last, drain
// their in-flight requests before the components behind them (ingest flush,
// live evaluation, alerting) stop, the way deferred calls unwind.
type runGroup struct {
	actors []actor
}

type actor struct {
	name      string
	execute   func() error
	interrupt func(error)
}

// Add adds an actor. interrupt must make execute return soon; it may be
// called after execute has returned.
func (g *runGroup) Add(name string, execute func() error, interrupt func(error)) {
	g.actors = append(g.actors, actor{name, execute, interrupt})
}

// Go adds a component that runs until its context is cancelled, such as a
// Run(ctx) method; interrupting it cancels the context.
func (g *runGroup) Go(name string, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(name, func() error { return run(ctx) }, func(error) { cancel() })
}

// Run starts every actor, calls started (if not nil) once they are all
// running, and returns the error of the first actor to return, after every
// actor has returned. A nil error from the first actor ends the group too.
func (g *runGroup) Run(started func()) error {
	if len(g.actors) == 0 {
		return nil
	}
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(g.actors))
	done := make([]chan struct{}, len(g.actors))
	var wg sync.WaitGroup
	for i, a := range g.actors {
		done[i] = make(chan struct{})
		wg.Go(func() {
			defer close(done[i])
			results <- result{i, a.execute()}
		})
	}
	if started != nil {
		started()
	}
	first := <-results
	for i := len(g.actors) - 1; i >= 0; i-- {
		g.actors[i].interrupt(first.err)
		<-done[i]
	}
	wg.Wait()
	return first.err
}
