package index

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// smallMax is the size up to which postings stay a sorted slice. Most
// values of high-cardinality keys (node, task and instance ids) have a
// handful of series, and a roaring bitmap costs ~150 bytes even when empty.
const smallMax = 32

// postings is the set of series IDs having one tag value.
type postings struct {
	small []uint32 // sorted, used while bm is nil
	bm    *roaring.Bitmap
}

func (p *postings) add(id uint32) {
	if p.bm != nil {
		p.bm.Add(id)
		return
	}
	// Fast path: IDs mostly arrive in increasing order.
	if n := len(p.small); n == 0 || p.small[n-1] < id {
		p.small = append(p.small, id)
	} else if i, found := slices.BinarySearch(p.small, id); !found {
		p.small = slices.Insert(p.small, i, id)
	}
	if len(p.small) > smallMax {
		p.bm = roaring.BitmapOf(p.small...)
		p.small = nil
	}
}

func (p *postings) remove(id uint32) {
	if p.bm != nil {
		p.bm.Remove(id)
		return
	}
	if i, found := slices.BinarySearch(p.small, id); found {
		p.small = slices.Delete(p.small, i, i+1)
	}
}

func (p *postings) card() uint64 {
	if p.bm != nil {
		return p.bm.GetCardinality()
	}
	return uint64(len(p.small))
}

// orInto adds the postings to dst.
func (p *postings) orInto(dst *roaring.Bitmap) {
	if p.bm != nil {
		dst.Or(p.bm)
		return
	}
	dst.AddMany(p.small)
}

// andInto intersects dst with the postings, in place.
func (p *postings) andInto(dst *roaring.Bitmap) {
	if p.bm != nil {
		dst.And(p.bm)
		return
	}
	keep := make([]uint32, 0, len(p.small))
	for _, id := range p.small {
		if dst.Contains(id) {
			keep = append(keep, id)
		}
	}
	dst.Clear()
	dst.AddMany(keep)
}

// bitmap returns a new bitmap of the postings.
func (p *postings) bitmap() *roaring.Bitmap {
	if p.bm != nil {
		return p.bm.Clone()
	}
	return roaring.BitmapOf(p.small...)
}

// andCard returns |p ∩ other|; a nil other means all series.
func (p *postings) andCard(other *roaring.Bitmap) uint64 {
	if other == nil {
		return p.card()
	}
	if p.bm != nil {
		return p.bm.AndCardinality(other)
	}
	n := uint64(0)
	for _, id := range p.small {
		if other.Contains(id) {
			n++
		}
	}
	return n
}

// and returns p ∩ other as a new bitmap; a nil other means all series.
func (p *postings) and(other *roaring.Bitmap) *roaring.Bitmap {
	if other == nil {
		return p.bitmap()
	}
	if p.bm != nil {
		return roaring.And(p.bm, other)
	}
	out := roaring.New()
	for _, id := range p.small {
		if other.Contains(id) {
			out.Add(id)
		}
	}
	return out
}

// sizeBytes estimates the memory the postings hold.
func (p *postings) sizeBytes() uint64 {
	if p.bm != nil {
		return p.bm.GetSizeInBytes() + 64
	}
	return uint64(cap(p.small))*4 + 24
}

// union returns the union of the postings of values of k, intersected
// with within when it is not nil. Must be called with the index read lock
// held.
func (k *keyEntry) union(values []string, within *roaring.Bitmap) *roaring.Bitmap {
	parts := make([]*roaring.Bitmap, 0, len(values))
	for _, v := range values {
		p := k.values[v]
		if p == nil {
			continue
		}
		switch {
		case within != nil:
			if b := p.and(within); !b.IsEmpty() {
				parts = append(parts, b)
			}
		case p.bm != nil:
			parts = append(parts, p.bm) // FastOr does not modify its inputs
		default:
			parts = append(parts, roaring.BitmapOf(p.small...))
		}
	}
	switch len(parts) {
	case 0:
		return roaring.New()
	case 1:
		if within != nil {
			return parts[0]
		}
		return parts[0].Clone() // may be the postings' own bitmap
	}
	return roaring.FastOr(parts...)
}
