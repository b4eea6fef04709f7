package db

import (
	"context"
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestWideRangeCostsTheData is issue #17 item 3: with one series stored, a
// range from 1970 allocated for every step of the range and opened one
// Pebble iterator per block period since 1970 (gigabytes for one request).
// Periods without data now cost nothing: the fetch allocates for the
// periods that may hold data.
func TestWideRangeCostsTheData(t *testing.T) {
	t.Parallel()
	now := int64(1_760_000_040_000)
	opts := Options{Now: func() int64 { return now }, CheckpointInterval: 1 << 40, MaintenanceInterval: 1 << 40}
	db, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := &tsdb.Batch{}
	for i := range 30 {
		b.Points = append(b.Points, tsdb.Datapoint{Tags: tags.New("name", "wide", "atlas.dstype", "gauge"), T: now - int64(i)*minute, V: 1})
	}
	if err := db.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	step := 20 * day // what the graph API picks for 1440 points since 1970
	end := (now/step + 2) * step
	req := tsdb.FetchRequest{Query: tags.Eq("name", "wide"), Start: 0, End: end, Step: step, CF: tsdb.CFMax}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	set, err := db.Fetch(context.Background(), req)
	d := time.Since(t0)
	runtime.ReadMemStats(&ms1)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Series) != 1 || len(set.Series[0].Values) != req.Points() {
		t.Fatalf("fetch = %d series", len(set.Series))
	}
	vals := set.Series[0].Values
	if vals[len(vals)-1] != 1 || !math.IsNaN(vals[0]) {
		t.Errorf("values: first %v, last %v; want NaN and 1", vals[0], vals[len(vals)-1])
	}
	if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 16<<20 {
		t.Errorf("a fetch since 1970 of one series allocated %d MiB (in %v)", alloc>>20, d)
	}
}

// TestMemoryBudget: a fetch whose answer would exceed max-bytes-per-query
// is refused with a LimitError naming it.
func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	now := int64(1_760_000_040_000)
	db, err := Open("", Options{Now: func() int64 { return now }, MaxBytesPerQuery: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := &tsdb.Batch{}
	for i := range 200 {
		b.Points = append(b.Points, tsdb.Datapoint{Tags: tags.New("name", "mem", "i", string(rune('a'+i%26))+string(rune('a'+i/26)), "atlas.dstype", "gauge"), T: now - minute, V: 1})
	}
	if err := db.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	_, err = db.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "mem"), Start: now - 2*day, End: now, Step: minute})
	var le *tsdb.LimitError
	if !errors.As(err, &le) || le.Limit != "max-bytes-per-query" {
		t.Fatalf("Fetch = %v, want a max-bytes-per-query LimitError", err)
	}
}

// TestAdmitCost: Admit hears the fetch's cost before the store's own
// limits are checked and before anything is read; the cost is what the
// limits count (their LimitError's Got), and an error from Admit ends the
// fetch with it.
func TestAdmitCost(t *testing.T) {
	t.Parallel()
	now := int64(1_760_000_040_000)
	db, err := Open("", Options{Now: func() int64 { return now }, MaxSeriesPerQuery: 40, MaxDatapointsPerQuery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := &tsdb.Batch{}
	for i := range 50 {
		b.Points = append(b.Points, tsdb.Datapoint{Tags: tags.New("name", "adm", "i", string(rune('a'+i%26))+string(rune('a'+i/26)), "atlas.dstype", "gauge"), T: now - minute, V: 1})
	}
	if err := db.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	fetch := func(q *tags.Query, points int64, admit func(tsdb.Cost) error) error {
		t.Helper()
		_, err := db.Fetch(context.Background(), tsdb.FetchRequest{Query: q, Start: now - points*minute, End: now, Step: minute, Admit: admit})
		return err
	}
	var got []tsdb.Cost
	record := func(c tsdb.Cost) error { got = append(got, c); return nil }
	// 26 series of 10 points: within the limits, admitted once.
	re, err := tags.Re("i", "[a-z]a")
	if err != nil {
		t.Fatal(err)
	}
	small := tags.And(tags.Eq("name", "adm"), re)
	if err := fetch(small, 10, record); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Series != 26 || got[0].Datapoints != 260 || got[0].Bytes <= 0 {
		t.Errorf("admitted costs %+v, want one of 26 series and 260 datapoints", got)
	}
	// 50 series: Admit hears of them, then the store's limit refuses with
	// the same count.
	got = nil
	var le *tsdb.LimitError
	if err := fetch(tags.Eq("name", "adm"), 10, record); !errors.As(err, &le) || le.Limit != "max-series-per-query" || le.Got != 50 {
		t.Fatalf("fetch of 50 series = %v, want max-series-per-query, got 50", err)
	}
	if len(got) != 1 || got[0].Series != 50 {
		t.Errorf("admitted costs %+v before the refusal, want 50 series", got)
	}
	// 26 series of 60 points: the datapoints limit counts what Admit heard.
	got = nil
	if err := fetch(small, 60, record); !errors.As(err, &le) || le.Limit != "max-datapoints-per-query" || le.Got != got[0].Datapoints || le.Got != 1560 {
		t.Fatalf("fetch of 1560 datapoints = %v (admitted %+v)", err, got)
	}
	// Admit's error is the fetch's.
	errNo := errors.New("no")
	if err := fetch(small, 10, func(tsdb.Cost) error { return errNo }); !errors.Is(err, errNo) {
		t.Errorf("fetch with a refusing Admit = %v", err)
	}
	// A series listing: its series, then the store's limit.
	got = nil
	if sets, _, err := db.Series(context.Background(), tsdb.SeriesRequest{Query: small, Admit: record}); err != nil || len(sets) != 26 {
		t.Fatalf("Series = %d sets, %v", len(sets), err)
	}
	if _, _, err := db.Series(context.Background(), tsdb.SeriesRequest{Query: tags.Eq("name", "adm"), Admit: record}); !errors.As(err, &le) || le.Got != 50 {
		t.Fatalf("Series of 50 = %v, want max-series-per-query", err)
	}
	if len(got) != 2 || got[0] != (tsdb.Cost{Series: 26}) || got[1] != (tsdb.Cost{Series: 50}) {
		t.Errorf("admitted listings %+v, want 26 then 50 series", got)
	}
}
