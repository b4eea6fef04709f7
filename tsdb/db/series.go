package db

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Tags implements tsdb.Querier.
func (db *DB) Tags(ctx context.Context, req tsdb.TagsRequest) ([]tsdb.TagCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		req.Limit = math.MaxInt
	}
	var matched *roaring.Bitmap
	if req.Query != nil {
		var err error
		if matched, err = db.selectIDs(ctx, req.Query); err != nil {
			return nil, err
		}
	}
	if req.Partitions != nil {
		if err := req.Partitions.Validate(); err != nil {
			return nil, err
		}
		if matched == nil {
			matched = db.head.Index().Select(tags.True())
		}
		matched = db.inPartitions(matched, req.Partitions)
	}
	if req.End > req.Start {
		var err error
		if matched, err = db.withData(ctx, matched, req.Start, req.End); err != nil {
			return nil, err
		}
	}
	if req.Key == "" {
		return db.head.Index().Keys(matched, req.After, req.Limit), nil
	}
	return db.head.Index().Values(req.Key, matched, req.After, req.Limit), nil
}

// Series implements tsdb.SeriesLister.
func (db *DB) Series(ctx context.Context, req tsdb.SeriesRequest) ([]tags.Set, bool, error) {
	if req.Query == nil {
		return nil, false, errors.New("tsdb: series without a query")
	}
	ids, err := db.selectIDs(ctx, req.Query)
	if err != nil {
		return nil, false, err
	}
	if req.Partitions != nil {
		if err := req.Partitions.Validate(); err != nil {
			return nil, false, err
		}
		ids = db.inPartitions(ids, req.Partitions)
	}
	if req.End > req.Start {
		if ids, err = db.withData(ctx, ids, req.Start, req.End); err != nil {
			return nil, false, err
		}
	}
	n := int(ids.GetCardinality())
	if req.Admit != nil {
		if err := req.Admit(tsdb.Cost{Series: n}); err != nil {
			return nil, false, err
		}
	}
	if n > db.opts.MaxSeriesPerQuery {
		return nil, false, &tsdb.LimitError{Limit: "max-series-per-query", Max: db.opts.MaxSeriesPerQuery, Got: n}
	}
	// Sorted by keys built once into one buffer: comparing tag sets tag by
	// tag was most of the time of listing 100 000 series (profiled), and
	// only the first Limit need decoding.
	type entry struct {
		enc      []byte // in encs, or an array it outgrew
		from, to int    // the sort key in keys
	}
	entries := make([]entry, 0, ids.GetCardinality())
	var keys, encs []byte
	it := ids.Iterator()
	for i := 0; it.HasNext(); i++ {
		if i%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return nil, false, err
			}
		}
		start := len(encs)
		var ok bool
		if encs, ok = db.head.AppendSeriesTags(encs, it.Next()); !ok {
			continue // deleted since the index answered
		}
		// The entries' encodings stay valid when encs grows: they keep the
		// array they are in.
		enc := encs[start:len(encs):len(encs)]
		if keys == nil {
			// A key is at most the encoding's size: size the buffer once.
			keys = make([]byte, 0, int(ids.GetCardinality())*(len(enc)+8))
		}
		from := len(keys)
		if keys, err = tags.AppendSortKey(keys, enc); err != nil {
			return nil, false, err
		}
		entries = append(entries, entry{enc: enc, from: from, to: len(keys)})
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(keys[a.from:a.to], keys[b.from:b.to]) })
	more := req.Limit > 0 && len(entries) > req.Limit
	if more {
		entries = entries[:req.Limit]
	}
	out := make([]tags.Set, len(entries))
	for i, e := range entries {
		if out[i], err = tags.Decode(e.enc); err != nil {
			return nil, false, err
		}
	}
	return out, more, nil
}

// withData returns the series of ids (nil: every series) that may have
// data in [start, end): their newest data is at or after start, and they
// have a block in a period that the window meets, in memory for the
// periods memory holds, on disk (keys only) for the older ones. Periods
// outside those that may hold data cost nothing.
func (db *DB) withData(ctx context.Context, ids *roaring.Bitmap, start, end int64) (*roaring.Bitmap, error) {
	bs := int64(db.head.BlockSteps())
	pmin := floorDiv(floorDiv(start, db.opts.Step), bs)
	pmax := floorDiv(floorDiv(end-1, db.opts.Step), bs)
	lo, hi, err := db.dataPeriods()
	if err != nil {
		return nil, err
	}
	pmin, pmax = max(pmin, lo), min(pmax, hi)
	if pmax < pmin {
		return roaring.New(), nil
	}
	var onDisk *roaring.Bitmap
	if minMem := db.head.MinPeriod(); db.disk != nil && pmin < minMem {
		onDisk = roaring.New()
		n := 0
		err := db.disk.BlockSeries(pmin, min(pmax, minMem-1), func(id uint32) error {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			onDisk.Add(id)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return db.head.WithData(ids, pmin, pmax, start, onDisk), ctx.Err()
}
