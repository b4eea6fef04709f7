package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestRunGroupOrder(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var stopped []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		stopped = append(stopped, s)
	}
	var g runGroup
	for _, name := range []string{"store-side", "component", "listener"} {
		g.Go(name, func(ctx context.Context) error {
			<-ctx.Done()
			note(name)
			return nil
		})
	}
	boom := errors.New("boom")
	stop := make(chan struct{})
	g.Add("trigger", func() error { <-stop; return boom }, func(error) {})
	var startedCalled bool
	err := g.Run(func() { startedCalled = true; close(stop) })
	if !errors.Is(err, boom) {
		t.Errorf("Run = %v, want the first actor's error", err)
	}
	if !startedCalled {
		t.Error("started was not called")
	}
	// Interrupted in reverse order of Add, each after the one added later returned.
	if want := []string{"listener", "component", "store-side"}; !slices.Equal(stopped, want) {
		t.Errorf("stop order = %v, want %v", stopped, want)
	}
}

func TestRunGroupEmpty(t *testing.T) {
	t.Parallel()
	var g runGroup
	if err := g.Run(nil); err != nil {
		t.Errorf("empty Run = %v", err)
	}
}
