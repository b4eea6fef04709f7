package bad

import (
	"os"
	"sync/atomic"
)

func work(n *int64) {
	go func() {}()
	var v int64
	_ = v
	panic("BUG: fine")
	_ = n
	atomic.AddInt64(n, 1)
	os.Exit(1)
	panic("oops")
	panic("bad value: " + "x")
}

func Undocumented() {}

// Does things.
func Misnamed() {}

// Parse2 parses again.
func Parse2() {}

// Parse is documented.
func Parse() {}

// Handler is documented; its String implements fmt.Stringer and needs no
// comment of its own.
type Handler struct{}

func (Handler) String() string { return "" }
