package spanstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-dev/sextant/tracing"
)

// Services implements tracing.Catalog.
func (s *Store) Services(ctx context.Context) (_ []string, err error) {
	if s.closed.Load() {
		return nil, tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return nil, err
	}
	defer s.trap.Recover(&err)
	s.mu.Lock()
	set := map[string]struct{}{}
	for id := range s.mu.ops {
		set[id.service] = struct{}{}
	}
	s.mu.Unlock()
	out := make([]string, 0, len(set))
	for svc := range set {
		out = append(out, svc)
	}
	sort.Strings(out)
	return out, nil
}

// Operations implements tracing.Catalog.
func (s *Store) Operations(ctx context.Context, service string, kind tracing.SpanKind) (_ []tracing.Operation, err error) {
	if s.closed.Load() {
		return nil, tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return nil, err
	}
	defer s.trap.Recover(&err)
	var out []tracing.Operation
	s.mu.Lock()
	for id := range s.mu.ops {
		if id.service == service && (kind == tracing.SpanKindUnspecified || id.kind == kind) {
			out = append(out, tracing.Operation{Name: id.name, Kind: id.kind})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b tracing.Operation) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

// Dependencies implements tracing.DependencyReader, at minute resolution.
func (s *Store) Dependencies(ctx context.Context, start, end int64) ([]tracing.Dependency, error) {
	counts := map[depPair]int64{}
	err := s.scanDeps(ctx, start, end, func(parent, child []byte, _, _ int, calls int64) {
		counts[depPair{string(parent), string(child)}] += calls
	})
	if err != nil {
		return nil, err
	}
	return sortedDeps(counts), nil
}

// SetPartitions makes the store count the calls between services by the
// partition of their trace in a cluster's span log of n partitions
// (tracing.TracePartition), from the next write on, so that
// DependenciesIn can answer for some partitions. A store node calls it
// before it applies the log; 0, the default, counts without partitions.
func (s *Store) SetPartitions(n int) { s.partitions.Store(int64(max(n, 0))) }

// DependenciesIn implements tracing.DependencyPartitionReader, at minute
// resolution.
func (s *Store) DependenciesIn(ctx context.Context, start, end int64, n int, want []int) (in, unplaced []tracing.Dependency, err error) {
	mask := make([]bool, max(n, 0))
	for _, p := range want {
		if p >= 0 && p < n {
			mask[p] = true
		}
	}
	ins, outs := map[depPair]int64{}, map[depPair]int64{}
	err = s.scanDeps(ctx, start, end, func(parent, child []byte, kn, part int, calls int64) {
		switch {
		case kn != n || part < 0:
			outs[depPair{string(parent), string(child)}] += calls
		case mask[part]:
			ins[depPair{string(parent), string(child)}] += calls
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return sortedDeps(ins), sortedDeps(outs), nil
}

// depPair is an edge of the dependency graph.
type depPair struct{ parent, child string }

// scanDeps calls fn for every dependency entry of the minutes of
// [start, end): the services, the partition count and partition of the
// entry (0 and -1 when it has none) and the calls it counts.
func (s *Store) scanDeps(ctx context.Context, start, end int64, fn func(parent, child []byte, n, part int, calls int64)) (err error) {
	if s.closed.Load() {
		return tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return err
	}
	defer s.trap.Recover(&err)
	lo := binary.BigEndian.AppendUint64([]byte{kindDep}, uint64(max(start, 0)/60e9))
	hi := binary.BigEndian.AppendUint64([]byte{kindDep}, uint64(max(end+60e9-1, 0)/60e9))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			it.Close()
			return err
		}
		parent, child, n, part, ok := parseDepKey(it.Key())
		calls, w := binary.Uvarint(it.Value())
		if !ok || w <= 0 {
			continue
		}
		fn(parent, child, n, part, int64(calls))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read dependencies: %w", err)
	}
	return nil
}

// sortedDeps returns counts as dependencies sorted by parent then child.
func sortedDeps(counts map[depPair]int64) []tracing.Dependency {
	out := make([]tracing.Dependency, 0, len(counts))
	for p, n := range counts {
		out = append(out, tracing.Dependency{Parent: p.parent, Child: p.child, CallCount: n})
	}
	slices.SortFunc(out, func(a, b tracing.Dependency) int {
		return cmp.Or(strings.Compare(a.Parent, b.Parent), strings.Compare(a.Child, b.Child))
	})
	return out
}

// WriteExemplars implements tracing.ExemplarStore. A later exemplar for
// the same series and step replaces the earlier one. Exemplars are
// derived data: they are written without a sync of their own (the next
// span write's sync, or Pebble's, makes them durable), which keeps ingest
// at one fsync per request.
func (s *Store) WriteExemplars(ctx context.Context, ex []tracing.Exemplar) error {
	return s.writeExemplars(ctx, ex, nil)
}

// writeExemplars writes ex and, when m is not nil, the mark m in the same
// batch, then with a sync (mark.go).
func (s *Store) writeExemplars(ctx context.Context, ex []tracing.Exemplar, m *tracing.Mark) (err error) {
	if s.closed.Load() {
		return tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return err
	}
	defer s.trap.Recover(&err)
	if len(ex) == 0 {
		if m != nil {
			return s.commitMark(*m)
		}
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	wo := pebble.NoSync
	if m != nil {
		b.Set(markKey(m.Log, m.Partition), appendMarkValue(nil, m.Next), nil)
		wo = pebble.Sync
	}
	var v []byte
	for i := range ex {
		e := &ex[i]
		v = append(v[:0], e.TraceID[:]...)
		v = append(v, e.SpanID[:]...)
		v = binary.AppendUvarint(v, uint64(max(e.Duration, 0)))
		b.Set(exemplarKey(e.T, seriesKey(e.Tags)), v, nil)
	}
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("commit exemplars: %w", err)
	}
	if m != nil {
		s.setMark(*m)
	}
	return nil
}

// Exemplars implements tracing.ExemplarStore.
func (s *Store) Exemplars(ctx context.Context, start, end int64) (_ []tracing.Exemplar, err error) {
	if s.closed.Load() {
		return nil, tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return nil, err
	}
	defer s.trap.Recover(&err)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: exemplarKey(start, ""), UpperBound: exemplarKey(end, "")})
	if err != nil {
		return nil, err
	}
	var out []tracing.Exemplar
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) < 9 || len(v) < 25 {
			continue
		}
		e := tracing.Exemplar{T: int64(binary.BigEndian.Uint64(k[1:9])), Tags: parseSeriesKey(string(k[9:]))}
		copy(e.TraceID[:], v[:16])
		copy(e.SpanID[:], v[16:24])
		d, _ := binary.Uvarint(v[24:])
		e.Duration = durationOf(d)
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("read exemplars: %w", err)
	}
	return out, nil
}

// seriesKey is a tag map's canonical text: sorted k 0x00 v 0x00 pairs.
func seriesKey(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(cleanName(k))
		b.WriteByte(0)
		b.WriteString(cleanName(tags[k]))
		b.WriteByte(0)
	}
	return b.String()
}

func parseSeriesKey(s string) map[string]string {
	parts := strings.Split(s, "\x00")
	m := make(map[string]string, len(parts)/2)
	for i := 0; i+1 < len(parts); i += 2 {
		m[parts[i]] = parts[i+1]
	}
	return m
}
