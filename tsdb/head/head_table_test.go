package head

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestSeriesSize holds the per-series struct to a size class of Go's
// allocator (144 bytes): every series holds one, and the next class up is
// 16 bytes a series more (docs/benchmarks.md, "Memory per series at a
// million series").
func TestSeriesSize(t *testing.T) {
	t.Parallel()
	if s := unsafe.Sizeof(memSeries{}); s > 144 {
		t.Errorf("memSeries is %d bytes, want at most 144", s)
	}
	if s := unsafe.Sizeof(tableSlot{}); s != 8 {
		t.Errorf("tableSlot is %d bytes, want 8", s)
	}
}

// TestSeriesTable checks the table against a map under random inserts,
// finds and removes, with hashes made to share home slots and top bits
// (long probe runs, wrapping around the end, equal fragments).
func TestSeriesTable(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var tab seriesTable
	model := map[uint32]uint64{} // local → hash
	var next uint32
	hash := func() uint64 {
		if rng.IntN(8) > 0 {
			return rng.Uint64()
		}
		// One of 16 fragments near the top: homes at the table's end
		// (probe runs wrap), and many series per fragment.
		return uint64(0xffff_fff0|uint32(rng.IntN(16)))<<32 | uint64(rng.Uint32())
	}
	for op := range 20_000 {
		switch rng.IntN(3) {
		case 0, 1:
			h := hash()
			tab.insert(h, next)
			model[next] = h
			next++
		case 2:
			for l, h := range model { // a random one: map order
				tab.remove(h, l)
				delete(model, l)
				break
			}
		}
		if op%97 != 0 {
			continue
		}
		checked := 0
		for l, h := range model {
			if checked++; checked > 300 {
				break
			}
			if got, ok := tab.find(h, func(x uint32) bool { return x == l }); !ok || got != l {
				t.Fatalf("op %d: find(%x, %d) = %d, %v", op, h, l, got, ok)
			}
		}
		if tab.n != len(model) {
			t.Fatalf("op %d: n = %d, want %d", op, tab.n, len(model))
		}
		if got, ok := tab.find(hash(), func(x uint32) bool { return x == next }); ok {
			t.Fatalf("op %d: found %d, never inserted", op, got)
		}
	}
	if per := float64(tab.bytes()) / float64(max(1, tab.n)); per > 16 {
		t.Errorf("%.1f bytes a series", per)
	}
}

// TestTagSlab checks that refs resolve to what was added, including sets
// larger than a chunk, and that resolved bytes cannot be appended into.
func TestTagSlab(t *testing.T) {
	t.Parallel()
	var s tagSlab
	var sets [][]byte
	var refs []uint32
	for i := range 5000 {
		n := 20 + i%150
		if i%1000 == 999 {
			n = tagChunk + i // larger than a chunk
		}
		enc := bytes.Repeat([]byte{byte(i)}, n)
		sets = append(sets, enc)
		refs = append(refs, s.add(enc))
	}
	for i, ref := range refs {
		got := s.get(ref)
		if !bytes.Equal(got, sets[i]) {
			t.Fatalf("set %d: got %d bytes, want %d", i, len(got), len(sets[i]))
		}
		if cap(got) != len(got) {
			t.Fatalf("set %d: capacity %d past its %d bytes", i, cap(got), len(got))
		}
	}
}

// TestDeleteCompactsTags deletes most series of a head and checks that the
// tag slabs are compacted and the interned tags of deleted series freed,
// that the remaining series keep their tags, and that tags read before the
// compaction stay intact.
func TestDeleteCompactsTags(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	h := newHead(t, c, nil)
	h.tagCompactMin = 256 // bytes: a few dozen series a shard
	const n, common = 5_000, 3
	set := func(i int) tags.Set {
		kv := []string{"name", "m", "i", fmt.Sprint(i)}
		for j := range common {
			kv = append(kv, fmt.Sprintf("k%02d", j), "v")
		}
		return tags.New(kv...)
	}
	var pts []tsdb.Datapoint
	for i := range n {
		pts = append(pts, pt(set(i), t0, 1))
	}
	b := appendOK(t, h, pts...)
	if got, want := h.pairs.len(), n+common+1; got != want {
		t.Fatalf("%d distinct tags interned, want %d", got, want)
	}
	keep := func(i int) bool { return i%10 == 0 }
	held := map[int][]byte{} // tags read before the deletion
	for i := range n {
		if i%1000 == 1 {
			id, _ := ID(b.Points[i].Ref)
			enc, ok := h.SeriesTags(id)
			if !ok {
				t.Fatalf("series %d not found", i)
			}
			held[i] = enc
		}
	}
	// Every series but the kept ones goes idle: seal and drop their
	// blocks, then delete what holds nothing.
	c.t = t0 + 3*hour
	var keepPts []tsdb.Datapoint
	for i := range n {
		if keep(i) {
			keepPts = append(keepPts, pt(set(i), c.t, 2))
		}
	}
	appendOK(t, h, keepPts...)
	h.DropBefore(t0/h.BlockDuration()+1, false)
	deleted := h.DeleteStale(t0 + hour)
	if want := n - n/10; len(deleted) != want {
		t.Fatalf("deleted %d series, want %d", len(deleted), want)
	}
	if got, want := h.pairs.len(), n/10+common+1; got != want {
		t.Errorf("%d distinct tags interned after the deletion, want %d", got, want)
	}
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		if s.mu.tags.dead != 0 {
			t.Errorf("shard %d: %d of %d tag bytes dead after DeleteStale, want a compacted slab", k, s.mu.tags.dead, s.mu.tags.used)
		}
		s.mu.Unlock()
	}
	for i, enc := range held {
		if want := set(i).AppendTo(nil); !bytes.Equal(enc, want) {
			t.Errorf("tags of series %d read before the compaction changed", i)
		}
	}
	// The kept series resolve by tags to themselves, and new ones are made
	// (reusing freed tag ids).
	again := appendOK(t, h, keepPts...)
	for j, p := range again.Points {
		id, _ := ID(p.Ref)
		enc, ok := h.SeriesTags(id)
		if !ok || !bytes.Equal(enc, keepPts[j].Tags.AppendTo(nil)) {
			t.Fatalf("kept series %v: tags %q, %v", keepPts[j].Tags, enc, ok)
		}
	}
	if h.NumSeries() != n/10 {
		t.Errorf("%d series, want %d", h.NumSeries(), n/10)
	}
	b = appendOK(t, h, pt(set(1), c.t, 3), pt(set(3), c.t, 3))
	for _, p := range b.Points[:2] {
		id, _ := ID(p.Ref)
		if enc, _ := h.SeriesTags(id); !bytes.Equal(enc, p.Tags.AppendTo(nil)) {
			t.Errorf("new series %v: tags %q", p.Tags, enc)
		}
	}
	if h.NumSeries() != n/10+2 {
		t.Errorf("%d series after two new ones, want %d", h.NumSeries(), n/10+2)
	}
}

// TestPairTable checks interning, rebuilding, comparing and releasing tag
// sets against their canonical encodings, with ids past one uvarint byte
// and reused after release.
func TestPairTable(t *testing.T) {
	t.Parallel()
	pt := newPairTable()
	rng := rand.New(rand.NewPCG(3, 4))
	type held struct {
		enc, ids []byte
	}
	var live []held
	for op := range 5_000 {
		if len(live) > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(len(live))
			pt.release(live[j].ids)
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			continue
		}
		ts := tags.New("name", fmt.Sprint("m", rng.IntN(20)), "node", fmt.Sprint("n", rng.IntN(3000)), "x", strings.Repeat("y", rng.IntN(200)))
		enc := ts.AppendTo(nil)
		ids, ok := pt.intern(nil, enc)
		if !ok {
			t.Fatalf("op %d: intern(%v) failed", op, ts)
		}
		live = append(live, held{enc, ids})
		if op%250 == 0 {
			for _, h := range live {
				if got := pt.appendTags(nil, h.ids); !bytes.Equal(got, h.enc) {
					t.Fatalf("op %d: appendTags = %q, want %q", op, got, h.enc)
				}
				if !pt.equal(h.ids, h.enc) || pt.equal(h.ids, h.enc[:len(h.enc)-1]) || pt.equal(h.ids, append(h.enc[:len(h.enc):len(h.enc)], 0)) {
					t.Fatalf("op %d: equal wrong for %q", op, h.enc)
				}
			}
		}
	}
	for _, h := range live {
		pt.release(h.ids)
	}
	if n := pt.len(); n != 0 {
		t.Errorf("%d tags held after every release", n)
	}
	if _, ok := pt.intern(nil, []byte{5, 'a'}); ok {
		t.Error("intern of a malformed encoding succeeded")
	}
	if n := pt.len(); n != 0 {
		t.Errorf("%d tags held after a failed intern", n)
	}
}

// TestPairTableConcurrent interns, rebuilds and releases tag sets from
// several goroutines at once, sharing most tags and growing the table's
// directory meanwhile (for the race detector: rebuilding takes no lock).
func TestPairTableConcurrent(t *testing.T) {
	t.Parallel()
	pt := newPairTable()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			type held struct{ enc, ids []byte }
			var live []held
			for op := range 5_000 {
				if len(live) > 50 || len(live) > 0 && rng.IntN(3) == 0 {
					h := live[0]
					if got := pt.appendTags(nil, h.ids); !bytes.Equal(got, h.enc) {
						t.Errorf("goroutine %d op %d: appendTags = %q, want %q", g, op, got, h.enc)
						return
					}
					pt.release(h.ids)
					live = live[1:]
					continue
				}
				ts := tags.New("name", fmt.Sprint("m", rng.IntN(10)), "g", fmt.Sprint(g), "u", fmt.Sprint(op))
				enc := ts.AppendTo(nil)
				ids, _ := pt.intern(nil, enc)
				if !pt.equal(ids, enc) {
					t.Errorf("goroutine %d op %d: equal(%q) false", g, op, enc)
					return
				}
				live = append(live, held{enc, ids})
			}
			for _, h := range live {
				pt.release(h.ids)
			}
		})
	}
	wg.Wait()
	if n := pt.len(); n != 0 {
		t.Errorf("%d tags held after every release", n)
	}
}
