package tsdb_test

import (
	"errors"
	"math"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
)

func TestCostExceeds(t *testing.T) {
	t.Parallel()
	limits := tsdb.Cost{Series: 10, Datapoints: 100, Bytes: 1000}
	f := func(c tsdb.Cost, limits tsdb.Cost, limit string, got int) {
		t.Helper()
		err := c.Exceeds(limits)
		var le *tsdb.LimitError
		switch {
		case limit == "" && err != nil:
			t.Errorf("%+v.Exceeds(%+v) = %v, want nil", c, limits, err)
		case limit != "" && (!errors.As(err, &le) || le.Limit != limit || le.Got != got):
			t.Errorf("%+v.Exceeds(%+v) = %v, want %s with got %d", c, limits, err, limit, got)
		}
	}
	f(tsdb.Cost{Series: 10, Datapoints: 100, Bytes: 1000}, limits, "", 0)
	f(tsdb.Cost{Series: 11, Datapoints: 200, Bytes: 2000}, limits, "max-series-per-query", 11)
	f(tsdb.Cost{Series: 1, Datapoints: 101, Bytes: 2000}, limits, "max-datapoints-per-query", 101)
	f(tsdb.Cost{Series: 1, Datapoints: 1, Bytes: 1001}, limits, "max-bytes-per-query", 1001)
	f(tsdb.Cost{Series: 1 << 40, Datapoints: 1 << 50, Bytes: 1 << 60}, tsdb.Cost{}, "", 0) // zero: no limit
	f(tsdb.Cost{Series: 5, Datapoints: 1 << 50}, tsdb.Cost{Datapoints: 1 << 49}, "max-datapoints-per-query", 1<<50)
}

func TestCostAdd(t *testing.T) {
	t.Parallel()
	got := tsdb.Cost{Series: 1, Datapoints: math.MaxInt - 1, Bytes: 3}.Add(tsdb.Cost{Series: 2, Datapoints: 5, Bytes: 4})
	if want := (tsdb.Cost{Series: 3, Datapoints: math.MaxInt, Bytes: 7}); got != want {
		t.Errorf("Add = %+v, want %+v (saturated)", got, want)
	}
}
