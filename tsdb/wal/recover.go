package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/tsdb"
)

// CorruptError reports damage in a WAL segment that is not a torn tail:
// valid records follow the damage, or the segment is not the last one, so
// cutting the file there would drop acknowledged records. It wraps
// tsdb.ErrCorrupt. Repair quarantines the damaged bytes and keeps the rest.
type CorruptError struct {
	File   string // path of the segment
	Offset int64  // byte offset of the first damaged record
	Reason string // what is wrong at Offset
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: segment %s is damaged at byte offset %d (%s) and valid records follow; "+
		"the damaged part can be quarantined with sextant repair", e.File, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, tsdb.ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return tsdb.ErrCorrupt }

// Replay calls fn with every record in the log, in LSN order. The record
// slice is only valid during the call. A torn final record of the last
// segment (a crash mid-write: nothing valid after it) is cut off. Damage
// followed by valid records, or in any segment but the last, is a
// *CorruptError naming the file and offset, and nothing is changed on
// disk. Replay must run before the first Log.
func (w *WAL) Replay(fn func(lsn uint64, rec []byte) error) error {
	w.mu.Lock()
	segs := slices.Clone(w.mu.segments)
	w.mu.Unlock()
	lsn := uint64(1)
	if len(segs) > 0 {
		lsn = segs[0].first
	}
	for i, s := range segs {
		if s.first != lsn {
			return fmt.Errorf("%w: wal segment %s starts at LSN %d, want %d", tsdb.ErrCorrupt, s.path, s.first, lsn)
		}
		last := i == len(segs)-1
		data, err := readFile(w.fs, s.path)
		if err != nil {
			return err
		}
		sc := scan(data)
		for _, r := range sc.records {
			if r.size > 0 { // empty records are Repair's fillers
				if err := fn(lsn, data[r.off+headerSize:r.off+headerSize+r.size]); err != nil {
					return err
				}
			}
			lsn++
		}
		if sc.bad < 0 {
			continue
		}
		if !last || sc.validAfter {
			return &CorruptError{File: s.path, Offset: sc.bad, Reason: sc.reason}
		}
		w.opts.Logger.Warn("cutting off torn wal tail", "segment", s.path, "offset", sc.bad, "reason", sc.reason)
		if err := rewrite(w.fs, s.path, data[:sc.bad]); err != nil {
			return fmt.Errorf("cut torn wal tail: %w", err)
		}
		if len(sc.records) == 0 {
			// Nothing usable: drop it so that the next segment, which starts
			// at the same LSN, can take its name.
			if err := w.fs.Remove(s.path); err != nil {
				return fmt.Errorf("remove empty wal segment: %w", err)
			}
			w.mu.Lock()
			w.mu.segments = w.mu.segments[:len(w.mu.segments)-1]
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	w.mu.replayed = true
	w.mu.nextLSN = lsn
	w.mu.written, w.mu.synced = lsn-1, lsn-1
	w.mu.Unlock()
	return nil
}

type span struct{ off, size int64 }

// segScan is what scan finds in a segment: the valid records from the
// start, the offset of the first bad one (-1 if none) and whether any valid
// record starts after it.
type segScan struct {
	records    []span
	bad        int64
	reason     string
	validAfter bool
}

// recordAt reports whether a valid record starts at off, and its payload
// size. With nonEmpty, an empty record (a zeroed header) does not count:
// zero-filled tails are common after a crash and prove nothing.
func recordAt(data []byte, off int64, nonEmpty bool) (size int64, reason string) {
	rest := int64(len(data)) - off
	if rest < headerSize {
		return -1, "short record header"
	}
	n := int64(binary.LittleEndian.Uint32(data[off:]))
	if n > MaxRecord {
		return -1, fmt.Sprintf("record of %d bytes", n)
	}
	if n == 0 && nonEmpty {
		return -1, "empty record"
	}
	if rest-headerSize < n {
		return -1, "short record"
	}
	if crc32.Checksum(data[off+headerSize:off+headerSize+n], crcTable) != binary.LittleEndian.Uint32(data[off+4:]) {
		return -1, "checksum mismatch"
	}
	return n, ""
}

// scan walks the records of a segment. Past a bad record it looks for a
// valid one at every later offset: finding one means the damage is not a
// torn tail. The search costs the length of the damaged tail, which after a
// crash is at most the last write.
func scan(data []byte) segScan {
	sc := segScan{bad: -1}
	off := int64(0)
	for off < int64(len(data)) {
		n, reason := recordAt(data, off, false)
		if n < 0 {
			sc.bad, sc.reason = off, reason
			_, ok := nextValid(data, off+1)
			sc.validAfter = ok
			return sc
		}
		sc.records = append(sc.records, span{off, n})
		off += headerSize + n
	}
	return sc
}

// nextValid returns the first offset at or after from where a non-empty
// valid record starts.
func nextValid(data []byte, from int64) (int64, bool) {
	for p := from; p+headerSize <= int64(len(data)); p++ {
		if n, _ := recordAt(data, p, true); n > 0 {
			return p, true
		}
	}
	return 0, false
}

func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open wal segment: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read wal segment %s: %w", path, err)
	}
	return data, nil
}

// rewrite replaces the file at path with data, durably: a temporary file,
// fsync, rename, fsync of the directory.
func rewrite(fs vfs.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(fs, fs.PathDir(path))
}

// Damage is one damaged region Repair set aside.
type Damage struct {
	File       string // segment
	Offset     int64  // first damaged byte
	Length     int64  // damaged bytes
	Quarantine string // file holding a copy of the damaged bytes
}

// Repair makes a damaged log replayable without losing a valid record:
// in every segment, each damaged region (from a bad record to the next
// valid one, or to the end) is copied to a quarantine file beside the
// segment (<segment>.<offset>.quarantine) and replaced by empty filler
// records, so that the records after it keep LSNs at least as high as
// they had (replay skips fillers; a record replayed twice is ignored by the
// head as out of order). The number of fillers is exact when a later
// segment fixes it, and otherwise an upper bound (a record takes at least
// headerSize bytes). Repair must run with the store closed.
func Repair(dir string, fs vfs.FS) ([]Damage, error) {
	if fs == nil {
		fs = vfs.Default
	}
	segs, err := listSegments(fs, dir)
	if err != nil {
		return nil, err
	}
	var out []Damage
	for i, s := range segs {
		data, err := readFile(fs, s.path)
		if err != nil {
			return out, err
		}
		total := int64(-1) // records the segment must hold, if known
		if i+1 < len(segs) {
			total = int64(segs[i+1].first - s.first)
		}
		fixed, dmg, err := repairSegment(s.path, data, total)
		if err != nil {
			return out, err
		}
		if len(dmg) == 0 {
			continue
		}
		for _, d := range dmg {
			q := fmt.Sprintf("%s.%d.quarantine", s.path, d.Offset)
			if err := rewrite(fs, q, data[d.Offset:d.Offset+d.Length]); err != nil {
				return out, fmt.Errorf("quarantine %s: %w", q, err)
			}
			d.Quarantine = q
			out = append(out, d)
		}
		if err := rewrite(fs, s.path, fixed); err != nil {
			return out, fmt.Errorf("rewrite %s: %w", s.path, err)
		}
	}
	return out, nil
}

// repairSegment returns the segment with each damaged region replaced by
// fillers, and the regions.
func repairSegment(path string, data []byte, total int64) ([]byte, []Damage, error) {
	type region struct {
		d     Damage
		bound int64 // most records it can have held
	}
	var (
		good    [][2]int64 // [from, to) runs of valid records
		regions []region
		nGood   int64
	)
	off, runStart := int64(0), int64(0)
	for off < int64(len(data)) {
		n, _ := recordAt(data, off, false)
		if n >= 0 {
			nGood++
			off += headerSize + n
			continue
		}
		good = append(good, [2]int64{runStart, off})
		next, ok := nextValid(data, off+1)
		if !ok {
			next = int64(len(data))
		}
		regions = append(regions, region{Damage{File: path, Offset: off, Length: next - off}, (next - off + headerSize - 1) / headerSize})
		off, runStart = next, next
	}
	good = append(good, [2]int64{runStart, off})
	if len(regions) == 0 {
		return nil, nil, nil
	}
	missing := int64(-1)
	if total >= 0 {
		missing = total - nGood
		if missing < 0 {
			return nil, nil, fmt.Errorf("%w: wal segment %s holds %d records, more than the %d its successor allows",
				tsdb.ErrCorrupt, path, nGood, total)
		}
	}
	var out []byte
	var dmg []Damage
	for i, r := range regions {
		out = append(out, data[good[i][0]:good[i][1]]...)
		fill := r.bound
		if missing >= 0 {
			fill = min(fill, missing)
			if i == len(regions)-1 {
				fill = missing
			}
			missing -= fill
		}
		out = append(out, make([]byte, fill*headerSize)...) // empty records: length 0, CRC 0
		dmg = append(dmg, r.d)
	}
	out = append(out, data[good[len(good)-1][0]:good[len(good)-1][1]]...)
	return out, dmg, nil
}
