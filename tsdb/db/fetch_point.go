package db

import (
	"context"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/head"
)

// selected is the series of one fetch: a bitmap from the index, or the
// sorted ids of a cached tsdb.Selection. Each form is made from the other
// when a reader needs it (the block scan takes a bitmap, the point read a
// slice).
type selected struct {
	bm  *roaring.Bitmap
	ids []uint32
}

func (s *selected) card() int {
	if s.bm != nil {
		return int(s.bm.GetCardinality())
	}
	return len(s.ids)
}

func (s *selected) bitmap() *roaring.Bitmap {
	if s.bm == nil {
		s.bm = roaring.BitmapOf(s.ids...)
	}
	return s.bm
}

func (s *selected) array() []uint32 {
	if s.ids == nil {
		s.ids = s.bm.ToArray()
	}
	return s.ids
}

// selectFor returns the series req reads. With a Selection that is still
// valid (same query, and the index epoch of its names unchanged) it reuses
// the series the Selection holds; otherwise it selects and fills the
// Selection in. The epoch is read before selecting, so a series added
// meanwhile makes the next fetch select again rather than be missed.
func (db *DB) selectFor(ctx context.Context, req *tsdb.FetchRequest) (*selected, error) {
	sel := req.Selection
	if sel == nil {
		bm, err := db.selectIDs(ctx, req.Query)
		if err != nil {
			return nil, err
		}
		return &selected{bm: bm}, nil
	}
	epoch := db.head.Index().Epoch(req.Query)
	if sel.Query == req.Query && sel.Epoch == epoch {
		// Fast path: nothing that could match was added or removed.
		ids := make([]uint32, 0, len(sel.Refs))
		for _, r := range sel.Refs {
			if id, ok := head.ID(r); ok {
				ids = append(ids, id)
			}
		}
		return &selected{ids: ids}, nil
	}
	bm, err := db.selectIDs(ctx, req.Query)
	if err != nil {
		return nil, err
	}
	s := &selected{bm: bm}
	refs := sel.Refs[:0]
	for _, id := range s.array() {
		refs = append(refs, head.Ref(id))
	}
	sel.Query, sel.Epoch, sel.Refs = req.Query, epoch, refs
	return s, nil
}

// runPoint reads the one primary of the fetch (global step f.k0) of every
// series with the head's point read. It reports false, having read
// nothing, when a series holds that step in a sealed block: the caller
// scans blocks then.
func (f *fetch) runPoint(ctx context.Context, ids []uint32) (bool, error) {
	pts, ok := f.db.head.AppendPoints(make([]head.Point, 0, len(ids)), ids, f.k0)
	if !ok {
		return false, nil
	}
	for i := range pts {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return true, err
			}
		}
		pt := &pts[i]
		gkey, ok := f.groupKey(pt.Tags)
		if !ok {
			continue // lacks a group-by key
		}
		f.stats.SeriesScanned++
		if pt.Read {
			f.stats.DatapointsScanned++
		}
		f.prim[0] = pt.V
		if err := f.emit(f.prim, pt.Tags, pt.DSType, gkey, !chunk.IsMissing(pt.V)); err != nil {
			return true, err
		}
	}
	return true, nil
}
