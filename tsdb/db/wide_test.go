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
