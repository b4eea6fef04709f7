package fanout_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestSeriesAndTagsInWindow: the query node lists series (tsdb.SeriesLister)
// and tags restricted to a time window exactly as one store holding all
// the data does, directly and through the Prometheus series, labels and
// label values APIs; the series "old" (data in the first half hour only)
// is left out of a later window.
func TestSeriesAndTagsInWindow(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t)
	fan := c.querier(t)
	ctx := context.Background()
	late := dataStart + 2*3600_000 // the second block: no "old" data
	for _, req := range []tsdb.SeriesRequest{
		{Query: tags.True()},
		{Query: tags.Eq("name", "old")},
		{Query: tags.Eq("name", "old"), Start: late, End: dataNow},
		{Query: tags.Eq("name", "old"), Start: dataStart, End: dataStart + 600_000},
		{Query: tags.True(), Start: late, End: dataNow, Limit: 7},
		{Query: tags.Eq("name", "req"), Limit: 30},
		{Query: tags.Eq("name", "req"), Limit: 29},
		{Query: tags.Eq("name", "none")},
	} {
		want, wantMore, err := c.single.Series(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got, more, err := fan.Series(ctx, req)
		if err != nil {
			t.Fatalf("Series(%+v): %v", req, err)
		}
		if diff := cmp.Diff(want, got); diff != "" || more != wantMore {
			t.Errorf("Series(%v %d-%d limit %d): more %v, want %v; mismatch (-single +cluster):\n%s", req.Query, req.Start, req.End, req.Limit, more, wantMore, diff)
		}
	}
	for _, req := range []tsdb.TagsRequest{
		{Key: "name"},
		{Key: "name", Start: late, End: dataNow},
		{Key: "app", Start: late, End: dataNow, Query: tags.Eq("name", "old")},
		{Key: "app", Start: dataStart, End: late},
		{Start: late, End: dataNow},
	} {
		want, err := c.single.Tags(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fan.Tags(ctx, req)
		if err != nil {
			t.Fatalf("Tags(%+v): %v", req, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Tags(%q %v %d-%d) mismatch (-single +cluster):\n%s", req.Key, req.Query, req.Start, req.End, diff)
		}
	}

	single := graphServer(t, c.single)
	cluster := graphServer(t, fan)
	sec := func(ms int64) string { return fmt.Sprint(ms / 1000) }
	for _, tc := range [][]string{
		{"/api/v1/series", "match[]", `{__name__="old"}`, "start", sec(late), "end", sec(dataNow)},
		{"/api/v1/series", "match[]", `{__name__="old"}`, "start", sec(dataStart), "end", sec(dataStart + 600_000)},
		{"/api/v1/series", "match[]", `{__name__=~".+"}`, "start", sec(late), "end", sec(dataNow), "limit", "12"},
		{"/api/v1/labels", "start", sec(late), "end", sec(dataNow)},
		{"/api/v1/label/__name__/values", "start", sec(late), "end", sec(dataNow)},
		{"/api/v1/label/__name__/values", "start", sec(dataStart), "end", sec(dataStart + 600_000)},
		{"/api/v1/label/app/values", "match[]", `{__name__="old"}`, "start", sec(late), "end", sec(dataNow)},
	} {
		_, _, want := get(t, single, tc[0], tc[1:]...)
		code, _, got := get(t, cluster, tc[0], tc[1:]...)
		if code != 200 || got != want || !strings.Contains(want, `"success"`) {
			t.Errorf("%v: %d\n got %s\nwant %s", tc, code, got, want)
		}
	}
	// The window matters: a later window has no "old".
	if _, _, body := get(t, cluster, "/api/v1/label/__name__/values", "start", sec(late), "end", sec(dataNow)); strings.Contains(body, `"old"`) {
		t.Errorf("names of the late window hold old: %s", body)
	}
}
