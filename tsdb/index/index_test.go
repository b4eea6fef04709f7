package index

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func testSeries(n int) []tags.Set {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []tags.Set
	for i := range n {
		s := tags.New("name", fmt.Sprintf("m%d", i%7), "app", fmt.Sprintf("%s%02d", []string{"api", "www", "db"}[i%3], i%11),
			"node", fmt.Sprintf("i-%04x", rng.IntN(500)), "status", fmt.Sprint([]int{200, 404, 1000, 2}[i%4]))
		if i%5 == 0 {
			s = append(s, tags.Tag{Key: "zone", Value: "z" + fmt.Sprint(i%3)}).Normalize()
		}
		out = append(out, s)
	}
	return out
}

func must(q *tags.Query, err error) *tags.Query {
	if err != nil {
		panic(err)
	}
	return q
}

func queries() []*tags.Query {
	return []*tags.Query{
		tags.True(), tags.False(),
		tags.Eq("name", "m3"), tags.Eq("name", "nope"), tags.Eq("nokey", "x"),
		tags.Has("zone"), tags.Has("nokey"),
		tags.In("app", []string{"api01", "www02", "zzz"}),
		must(tags.Re("app", "api")), must(tags.Re("app", "a.i0[1-3]")), must(tags.ReIC("app", "API")),
		must(tags.Re("node", "i-00")), tags.Contains("node", "ff"), tags.Ends("app", "5"), tags.Starts("app", "db1"),
		tags.Lt("status", "2"), tags.Le("status", "2"), tags.Gt("status", "404"), tags.Ge("status", "404"),
		tags.Lt("status", ""), tags.Gt("app", "www"),
		tags.Not(tags.Eq("zone", "z1")),
		tags.And(tags.Eq("name", "m1"), must(tags.Re("app", "api"))),
		tags.And(tags.Eq("name", "m1"), tags.Not(tags.Has("zone"))),
		tags.And(tags.Not(tags.Has("zone")), tags.Eq("name", "m1")),
		tags.Or(tags.Eq("name", "m1"), tags.Eq("zone", "z2")),
		tags.Not(tags.Or(tags.Eq("name", "m1"), tags.Lt("status", "3"))),
	}
}

func bruteForce(series []tags.Set, q *tags.Query, removed map[int]bool) []uint32 {
	var ids []uint32
	for i, s := range series {
		if !removed[i] && q.Matches(s) {
			ids = append(ids, uint32(i))
		}
	}
	return ids
}

func TestSelectMatchesBruteForce(t *testing.T) {
	t.Parallel()
	series := testSeries(3000)
	ix := New()
	for i, s := range series {
		ix.Add(uint32(i), s)
	}
	removed := map[int]bool{}
	check := func(stage string) {
		for _, q := range queries() {
			got := ix.Select(q).ToArray()
			want := bruteForce(series, q, removed)
			if !slices.Equal(got, want) {
				t.Errorf("%s: Select(%s) = %d ids, want %d", stage, q, len(got), len(want))
			}
		}
	}
	check("after add")
	for i := 0; i < len(series); i += 3 {
		ix.Remove(uint32(i), series[i])
		removed[i] = true
	}
	check("after remove")
	// Values added after a sort are merged in.
	extra := tags.New("name", "m1", "app", "api00a", "node", "i-zzzz", "status", "1")
	ix.Add(uint32(len(series)), extra)
	series = append(series, extra)
	check("after re-add")
	if got := ix.Len(); got != len(series)-len(removed) {
		t.Errorf("Len() = %d, want %d", got, len(series)-len(removed))
	}
}

func TestKeysValuesPaging(t *testing.T) {
	t.Parallel()
	ix := New()
	ix.Add(1, tags.New("name", "cpu", "app", "a"))
	ix.Add(2, tags.New("name", "cpu", "app", "b", "zone", "z"))
	ix.Add(3, tags.New("name", "mem", "app", "b"))
	ix.Add(4, tags.New("name", "mem", "app", "c"))

	keys := ix.Keys(nil, "", 10)
	want := []tsdb.TagCount{{Name: "app", Count: 4}, {Name: "name", Count: 4}, {Name: "zone", Count: 1}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("Keys() mismatch (-want +got):\n%s", diff)
	}
	if got := ix.Keys(nil, "app", 1); !slices.Equal(got, want[1:2]) {
		t.Errorf("Keys(after app, limit 1) = %v", got)
	}
	cpu := ix.Select(tags.Eq("name", "cpu"))
	if got := ix.Keys(cpu, "", 10); len(got) != 3 || got[2] != (tsdb.TagCount{Name: "zone", Count: 1}) {
		t.Errorf("Keys(cpu) = %v", got)
	}
	mem := ix.Select(tags.Eq("name", "mem"))
	if got := ix.Keys(mem, "", 10); len(got) != 2 {
		t.Errorf("Keys(mem) = %v, want no zone", got)
	}
	vals := ix.Values("app", nil, "", 2)
	if diff := cmp.Diff([]tsdb.TagCount{{Name: "a", Count: 1}, {Name: "b", Count: 2}}, vals); diff != "" {
		t.Errorf("Values(app) mismatch (-want +got):\n%s", diff)
	}
	if got := ix.Values("app", nil, "b", 2); !slices.Equal(got, []tsdb.TagCount{{Name: "c", Count: 1}}) {
		t.Errorf("Values(app, after b) = %v", got)
	}
	if got := ix.Values("app", mem, "", 10); !slices.Equal(got, []tsdb.TagCount{{Name: "b", Count: 1}, {Name: "c", Count: 1}}) {
		t.Errorf("Values(app, mem) = %v", got)
	}
	if got := ix.Values("nokey", nil, "", 10); got != nil {
		t.Errorf("Values(nokey) = %v", got)
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	series := testSeries(500)
	ix := New()
	for i, s := range series {
		ix.Add(uint32(i), s)
	}
	matched := ix.Select(tags.Eq("name", "m2"))
	got := map[string][]uint32{}
	var order []string
	ix.Group("app", matched, func(v string, ids *roaring.Bitmap) {
		got[v] = ids.ToArray()
		order = append(order, v)
	})
	if !slices.IsSorted(order) {
		t.Errorf("Group values not sorted: %v", order)
	}
	want := map[string][]uint32{}
	for _, id := range matched.ToArray() {
		app, _ := series[id].Get("app")
		want[app] = append(want[app], id)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Group mismatch (-want +got):\n%s", diff)
	}
}

func TestPostingsSmallToBitmap(t *testing.T) {
	t.Parallel()
	var p postings
	for i := 100; i > 0; i-- {
		p.add(uint32(i * 3))
	}
	p.add(30) // duplicate
	if p.card() != 100 || p.bm == nil {
		t.Fatalf("card = %d, bitmap %v", p.card(), p.bm != nil)
	}
	var q postings
	for _, id := range []uint32{5, 1, 9, 1} {
		q.add(id)
	}
	if !slices.Equal(q.small, []uint32{1, 5, 9}) {
		t.Errorf("small postings = %v", q.small)
	}
	q.remove(5)
	if q.card() != 2 || q.andCard(roaring.BitmapOf(9, 10)) != 1 {
		t.Errorf("after remove: %v", q.small)
	}
}
