package db

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestTagsAndSeriesInWindow: tag keys, tag values and series restricted to
// the series with data in a window, for blocks in memory and for blocks
// only on disk (older than the memory window), with and without a query.
func TestTagsAndSeriesInWindow(t *testing.T) {
	t.Parallel()
	now := int64(tsdbtest.T0)
	opts := Options{
		Now: func() int64 { return now }, MemoryRetention: 4 * hour, IngestMaxAge: hour,
		MaintenanceInterval: 1 << 40, CheckpointInterval: 1,
	}
	db := openDB(t, t.TempDir(), opts)
	write := func(kv ...string) {
		t.Helper()
		b := &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: tags.New(kv...), T: now, V: 1}}}
		if err := db.Append(context.Background(), b); err != nil || len(b.Rejected) > 0 {
			t.Fatalf("Append: %v %v", err, b.Rejected)
		}
	}
	write("name", "cpu", "app", "old", "zone", "z1", "atlas.dstype", "gauge") // at T0
	now += 5 * hour
	write("name", "cpu", "app", "new", "atlas.dstype", "gauge")
	write("name", "mem", "app", "new", "atlas.dstype", "gauge")
	now += 2 * hour // T0's block is now only on disk
	if err := db.Maintain(); err != nil {
		t.Fatal(err)
	}
	if db.Head().MinPeriod() <= tsdbtest.T0/(2*hour) {
		t.Fatalf("T0's block is still in memory (min period %d)", db.Head().MinPeriod())
	}
	T0 := int64(tsdbtest.T0)
	names := func(tc []tsdb.TagCount) []string {
		out := []string{}
		for _, c := range tc {
			out = append(out, c.Name)
		}
		return out
	}
	tagsIn := func(req tsdb.TagsRequest, want ...string) {
		t.Helper()
		got, err := db.Tags(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = []string{}
		}
		if diff := cmp.Diff(want, names(got)); diff != "" {
			t.Errorf("Tags(%+v) mismatch (-want +got):\n%s", req, diff)
		}
	}
	tagsIn(tsdb.TagsRequest{Key: "app"}, "new", "old")
	tagsIn(tsdb.TagsRequest{Key: "app", Start: T0 - hour, End: T0 + hour}, "old")
	// Same block, but the series' newest data is before the window.
	tagsIn(tsdb.TagsRequest{Key: "app", Start: T0 + 30*minute, End: T0 + hour})
	tagsIn(tsdb.TagsRequest{Start: T0 - hour, End: T0 + hour}, "app", "atlas.dstype", "name", "zone")
	tagsIn(tsdb.TagsRequest{Start: T0 + 5*hour, End: T0 + 6*hour}, "app", "atlas.dstype", "name")
	tagsIn(tsdb.TagsRequest{Key: "name", Start: T0 + 5*hour, End: now}, "cpu", "mem")
	tagsIn(tsdb.TagsRequest{Key: "name", Start: T0 + 2*hour, End: T0 + 4*hour})
	tagsIn(tsdb.TagsRequest{Key: "name", Start: 0, End: T0 - 24*hour})
	tagsIn(tsdb.TagsRequest{Key: "app", Query: tags.Eq("name", "cpu"), Start: 0, End: now}, "new", "old")
	tagsIn(tsdb.TagsRequest{Key: "app", Query: tags.Eq("name", "mem"), Start: T0 - hour, End: T0 + hour})

	series := func(req tsdb.SeriesRequest, wantMore bool, want ...tags.Set) {
		t.Helper()
		got, more, err := db.Series(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = []tags.Set{}
		}
		if diff := cmp.Diff(want, got); diff != "" || more != wantMore {
			t.Errorf("Series(%+v) = more %v, want %v; mismatch (-want +got):\n%s", req, more, wantMore, diff)
		}
	}
	oldCPU := tags.New("name", "cpu", "app", "old", "zone", "z1", "atlas.dstype", "gauge")
	newCPU := tags.New("name", "cpu", "app", "new", "atlas.dstype", "gauge")
	newMem := tags.New("name", "mem", "app", "new", "atlas.dstype", "gauge")
	series(tsdb.SeriesRequest{Query: tags.Eq("name", "cpu")}, false, newCPU, oldCPU)
	series(tsdb.SeriesRequest{Query: tags.Eq("name", "cpu"), Start: T0 - hour, End: T0 + hour}, false, oldCPU)
	series(tsdb.SeriesRequest{Query: tags.True(), Start: T0 + 4*hour, End: now}, false, newCPU, newMem)
	series(tsdb.SeriesRequest{Query: tags.True(), Limit: 2}, true, newCPU, newMem) // by tags: app first
	series(tsdb.SeriesRequest{Query: tags.True(), Start: T0 + 2*hour, End: T0 + 3*hour}, false)
	// Partitions: each series in exactly the partition of its tags.
	for _, ts := range []tags.Set{oldCPU, newCPU, newMem} {
		p := tags.PartitionOf(ts, 4)
		got, _, err := db.Series(context.Background(), tsdb.SeriesRequest{Query: tags.True(), Partitions: &tsdb.Partitions{N: 4, Want: []int{p}}})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, g := range got {
			found = found || tags.PartitionOf(g, 4) != p || cmp.Equal(g, ts)
			if tags.PartitionOf(g, 4) != p {
				t.Errorf("Series of partition %d lists %v of partition %d", p, g, tags.PartitionOf(g, 4))
			}
		}
		if !found {
			t.Errorf("Series of partition %d lacks %v", p, ts)
		}
	}
	if _, _, err := db.Series(context.Background(), tsdb.SeriesRequest{Query: tags.True(), Partitions: &tsdb.Partitions{N: 2, Want: []int{5}}}); err == nil {
		t.Error("Series of partition 5 of 2: no error")
	}
	if _, _, err := db.Series(context.Background(), tsdb.SeriesRequest{}); err == nil {
		t.Error("Series without a query: no error")
	}
}
