package index

import (
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestEpoch(t *testing.T) {
	t.Parallel()
	ix := New()
	a := tags.New("name", "a", "app", "x")
	a2 := tags.New("name", "a", "app", "y")
	b := tags.New("name", "b", "app", "x")
	qa := tags.And(tags.Eq("app", "x"), tags.Eq("name", "a"))
	qin := tags.In("name", []string{"a", "c"})
	qapp := tags.Eq("app", "x")
	ix.Add(1, a)
	ea, ein, eapp := ix.Epoch(qa), ix.Epoch(qin), ix.Epoch(qapp)
	ix.Add(2, b)
	if ix.Epoch(qa) != ea || ix.Epoch(qin) != ein {
		t.Errorf("adding a series of another name changed the epoch of name a")
	}
	if ix.Epoch(qapp) == eapp {
		t.Errorf("adding a series did not change the epoch of a query without a name")
	}
	ix.Add(3, a2)
	if ix.Epoch(qa) == ea || ix.Epoch(qin) == ein {
		t.Errorf("adding a series of name a did not change its epoch")
	}
	ea, eb := ix.Epoch(qa), ix.Epoch(tags.Eq("name", "b"))
	ix.Remove(2, b)
	if ix.Epoch(qa) == ea || ix.Epoch(tags.Eq("name", "b")) == eb {
		t.Errorf("a removal did not change every epoch")
	}
	// The name is forgotten, and coming back is a new epoch again.
	eb = ix.Epoch(tags.Eq("name", "b"))
	ix.Add(2, tags.New("name", "b", "app", "z"))
	if ix.Epoch(tags.Eq("name", "b")) == eb {
		t.Errorf("a name that came back kept its epoch")
	}
	if got := len(ix.mu.names); got != 2 {
		t.Errorf("%d name stamps, want 2", got)
	}
}
