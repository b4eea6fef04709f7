package lib

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestClock(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	c := Fixed(at)
	if got := c.Now(); !got.Equal(at) {
		t.Errorf("Fixed(%v).Now() = %v", at, got)
	}
	if got, want := c.UnixMilli(), at.UnixMilli(); got != want {
		t.Errorf("UnixMilli() = %d, want %d", got, want)
	}
	var ms func() int64 = c.UnixMilli // what the store and ingest take
	if ms() != at.UnixMilli() {
		t.Errorf("UnixMilli method value = %d", ms())
	}
	// The nil Clock is the system clock: inside a synctest bubble, the
	// bubble's fake time, which starts at 2000-01-01 UTC.
	synctest.Test(t, func(t *testing.T) {
		var sys Clock
		start := sys.Now()
		time.Sleep(90 * time.Second) // synctest: the bubble's clock, instantly
		if d := sys.Now().Sub(start); d != 90*time.Second {
			t.Errorf("nil Clock advanced %v over a 90 s sleep, want exactly 90 s", d)
		}
	})
}
