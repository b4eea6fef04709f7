package fatal

import (
	"errors"
	"testing"
)

func TestTrap(t *testing.T) {
	t.Parallel()
	var failed []error
	tr := New("test", nil, func(err error) { failed = append(failed, err) })
	if tr.Err() != nil {
		t.Fatal("new trap failed")
	}
	op := func() (err error) {
		defer tr.Recover(&err)
		tr.Fatalf("disk refused %s", "write")
		return nil
	}
	err := op()
	if !errors.Is(err, ErrFailed) || err.Error() != "store failed: test: disk refused write" {
		t.Fatalf("op() = %v", err)
	}
	tr.Corruption("000001.sst", errors.New("checksum"))
	if len(failed) != 1 || !errors.Is(tr.Err(), ErrFailed) || tr.Err() != err {
		t.Fatalf("failed = %v, Err = %v: want one failure, the first", failed, tr.Err())
	}
	func() {
		defer func() {
			if r := recover(); r != "other" {
				t.Errorf("Recover swallowed %v", r)
			}
		}()
		var err error
		defer tr.Recover(&err)
		panic("other")
	}()
}
