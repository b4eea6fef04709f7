package fatal

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// ErrFailed marks every error of a store that Pebble declared failed. The
// process should stop and restart: the store's state after a fatal error
// is unknown, and acknowledged writes are in its log.
var ErrFailed = errors.New("store failed")

// Trap is a Pebble Logger that fails its store instead of crashing the
// process. Safe for concurrent use.
type Trap struct {
	what   string // the store, for messages: "tsdb", "spanstore"
	l      *slog.Logger
	failed atomic.Pointer[error]
	// OnFail, when set, is called once, with the error, when the store
	// first fails (cmd uses it to stop the server).
	onFail func(error)
}

// unwind is the panic value of Fatalf, recovered by Recover.
type unwind struct{ err error }

// New returns a Trap for the store named what, logging to l. onFail, if
// not nil, is called once when the store fails.
func New(what string, l *slog.Logger, onFail func(error)) *Trap {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Trap{what: what, l: l, onFail: onFail}
}

// Infof implements Pebble's Logger.
func (t *Trap) Infof(format string, args ...any) {
	t.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

// Errorf implements Pebble's Logger.
func (t *Trap) Errorf(format string, args ...any) {
	t.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf implements Pebble's Logger: it fails the store and unwinds to the
// nearest Recover. It never returns.
func (t *Trap) Fatalf(format string, args ...any) {
	err := t.Fail(fmt.Errorf(format, args...))
	panic(unwind{err})
}

// Fail marks the store failed with cause (the first cause wins) and
// returns the error every later operation reports.
func (t *Trap) Fail(cause error) error {
	e := fmt.Errorf("%w: %s: %w", ErrFailed, t.what, cause)
	if t.failed.CompareAndSwap(nil, &e) {
		t.l.Error("store failed; it refuses every operation from now on", "store", t.what, "err", cause)
		if t.onFail != nil {
			t.onFail(e)
		}
	}
	return *t.failed.Load()
}

// Corruption records data corruption Pebble found in a file: the store
// fails, and the read that found it returns its own error.
func (t *Trap) Corruption(path string, cause error) {
	t.Fail(fmt.Errorf("corrupt data in %s: %w", path, cause))
}

// Err returns the error that failed the store, or nil.
func (t *Trap) Err() error {
	if e := t.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// Recover, deferred by a store operation that calls Pebble, turns Fatalf's
// unwinding into that operation's error. Other panics go on.
func (t *Trap) Recover(err *error) {
	r := recover()
	if r == nil {
		return
	}
	u, ok := r.(unwind)
	if !ok {
		panic(r)
	}
	*err = u.err
}
