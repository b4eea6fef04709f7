package spanstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-dev/sextant/tracing"
)

// The value dictionary turns prefix and regex attribute filters into
// sets of exact values that the search entries' blooms can test. Per hour
// of search entries it lists the distinct values of each attribute key
// (`a hour key 0x00 value`). A key with too many distinct values in an
// hour, or a value too long to list, marks the key incomplete for the
// hour (`A hour key`); past the tracker's memory bound, or for hours it
// no longer follows, the whole hour is marked (`A hour` with an empty
// key). Filters on incomplete keys read the candidates' blocks instead.

const (
	kindDict         = 'a'
	kindDictOverflow = 'A'
	maxDictValues    = 4096    // distinct values listed per key and hour
	maxDictValueLen  = 256     // longer values are not listed
	maxDictEntries   = 200_000 // pairs remembered per hour, to skip rewriting them
	maxFilterValues  = 256     // a filter matching more listed values is not pruned
	dictHours        = 3       // hours the tracker follows (the newest and two before)
)

// dictTracker remembers the pairs already written for the recent hours,
// so each distinct pair is written once per hour.
type dictTracker struct {
	mu     sync.Mutex
	seen   map[dictPair]struct{}
	counts map[dictKey]int // values per key and hour; -1 once the key overflowed
	sizes  map[uint32]int  // pairs per hour; -1 once the hour overflowed
	newest uint32
}

type dictPair struct {
	hour     uint32
	key, val string
}

type dictKey struct {
	hour uint32
	key  string
}

func dictValueKey(hour uint32, key, val string) []byte {
	k := binary.BigEndian.AppendUint32([]byte{kindDict}, hour)
	k = append(k, cleanName(key)...)
	k = append(k, 0)
	return append(k, val...)
}

func dictOverflowKey(hour uint32, key string) []byte {
	k := binary.BigEndian.AppendUint32([]byte{kindDictOverflow}, hour)
	return append(k, cleanName(key)...)
}

// add lists, in b, the pairs of the spans idx of w under hour.
func (d *dictTracker) add(b *pebble.Batch, hour uint32, w *blockWriter, idx []int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen, d.counts, d.sizes = map[dictPair]struct{}{}, map[dictKey]int{}, map[uint32]int{}
	}
	if hour > d.newest {
		d.newest = hour
		for p := range d.seen {
			if p.hour+dictHours <= hour {
				delete(d.seen, p)
			}
		}
		for k := range d.counts {
			if k.hour+dictHours <= hour {
				delete(d.counts, k)
			}
		}
		for h := range d.sizes {
			if h+dictHours <= hour {
				delete(d.sizes, h)
			}
		}
	}
	if hour+dictHours <= d.newest {
		// A late span in an hour no longer followed: its pairs cannot be
		// deduplicated or counted, so the hour is marked incomplete.
		if d.sizes[hour] != -1 {
			d.sizes[hour] = -1
			b.Set(dictOverflowKey(hour, ""), nil, nil)
		}
		return
	}
	procs := uint64(0)
	for _, x := range idx {
		m := &w.meta[x]
		d.pairsLocked(b, hour, w, m.hashes)
		if m.proc >= 64 || procs&(1<<m.proc) == 0 {
			if m.proc < 64 {
				procs |= 1 << m.proc
			}
			d.pairsLocked(b, hour, w, w.procHashes[m.proc])
		}
	}
}

func (d *dictTracker) pairsLocked(b *pebble.Batch, hour uint32, w *blockWriter, r [2]int32) {
	for i := r[0]; i < r[1]; i++ {
		key, val := w.pairKeys[i], w.pairVals[i]
		p := dictPair{hour, key, val}
		if _, ok := d.seen[p]; ok {
			continue
		}
		dk := dictKey{hour, key}
		n := d.counts[dk]
		if n < 0 {
			continue // the key overflowed this hour
		}
		if d.sizes[hour] < 0 {
			return
		}
		if d.sizes[hour] >= maxDictEntries {
			d.sizes[hour] = -1
			b.Set(dictOverflowKey(hour, ""), nil, nil)
			return
		}
		if n >= maxDictValues || len(val) > maxDictValueLen {
			d.counts[dk] = -1
			b.Set(dictOverflowKey(hour, key), nil, nil)
			continue
		}
		// Copies: the strings alias the request.
		p.key, p.val = strings.Clone(key), strings.Clone(val)
		d.seen[p] = struct{}{}
		d.counts[dictKey{hour, p.key}] = n + 1
		d.sizes[hour]++
		b.Set(dictValueKey(hour, key, val), nil, nil)
	}
}

// dictValues returns the bloom hashes of the listed values of f's key in
// hour that f matches, and whether that list is complete. A complete
// empty list means no span of the hour can match.
func (s *Store) dictValues(hour uint32, f *tracing.AttrFilter) ([]uint64, bool, error) {
	for _, k := range [][]byte{dictOverflowKey(hour, f.Key), dictOverflowKey(hour, "")} {
		_, closer, err := s.db.Get(k)
		if err == nil {
			closer.Close()
			if len(k) > 5 {
				return nil, false, nil // the key overflowed
			}
			// The hour overflowed: keys listed before are still complete,
			// keys never listed are unknown (checked below).
			break
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			return nil, false, err
		}
	}
	prefix := dictValueKey(hour, f.Key, "")
	lo := prefix
	if f.Match == tracing.MatchPrefix {
		lo = dictValueKey(hour, f.Key, f.Value)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(prefix)})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	var out []uint64
	listed := false
	for it.First(); it.Valid(); it.Next() {
		listed = true
		v := it.Key()[len(prefix):]
		if f.Match == tracing.MatchPrefix && !bytes.HasPrefix(v, []byte(f.Value)) {
			break
		}
		if f.Match == tracing.MatchRegex && (f.Regex == nil || !f.Regex.Match(v)) {
			continue
		}
		if len(out) == maxFilterValues {
			return nil, false, nil
		}
		out = append(out, attrHash(f.Key, string(v)))
	}
	if err := it.Error(); err != nil {
		return nil, false, err
	}
	if !listed && f.Match == tracing.MatchPrefix {
		// Nothing at or after the prefix: is the key listed at all?
		it.SetBounds(prefix, upper(prefix))
		listed = it.First()
	}
	if !listed {
		_, closer, err := s.db.Get(dictOverflowKey(hour, ""))
		if err == nil {
			closer.Close()
			return nil, false, nil // a key the overflowed hour did not list
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			return nil, false, err
		}
	}
	return out, true, nil
}
