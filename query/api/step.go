package api

import "fmt"

const (
	ms   = int64(1)
	sec  = 1000 * ms
	min_ = 60 * sec
	hour = 60 * min_
	day  = 24 * hour
)

// allowedSteps are the graph steps Atlas offers below one day; above, any
// multiple of a day.
var allowedSteps = []int64{
	1, 5, 10, 50, 100, 500,
	sec, 2 * sec, 3 * sec, 4 * sec, 5 * sec, 6 * sec, 10 * sec, 12 * sec, 15 * sec, 20 * sec, 30 * sec,
	min_, 2 * min_, 3 * min_, 4 * min_, 5 * min_, 6 * min_, 10 * min_, 12 * min_, 15 * min_, 20 * min_, 30 * min_,
	hour, 2 * hour, 3 * hour, 4 * hour, 6 * hour, 8 * hour, 12 * hour,
}

// MaxDatapoints is the most points a graph line may have.
const MaxDatapoints = 1440

// chooseStep picks the graph step: at least the requested step (default
// the storage step) and wide enough for at most one datapoint per pixel of
// width (capped at MaxDatapoints), rounded up to an allowed step that is a
// multiple of the storage step.
func chooseStep(storage, requested, start, end int64, width int) (int64, error) {
	if requested != 0 && requested < 0 {
		return 0, fmt.Errorf("step must be positive")
	}
	want := max(requested, storage)
	px := int64(min(MaxDatapoints, max(width, 1)))
	if dp := (end - start) / storage; dp > px {
		perPixel := (dp + px - 1) / px
		want = max(want, perPixel*storage)
	}
	for _, s := range allowedSteps {
		if s >= want && s%storage == 0 {
			return s, nil
		}
	}
	d := (want + day - 1) / day * day
	if d%storage != 0 {
		return 0, fmt.Errorf("no step of at least %dms is a multiple of the storage step %dms", want, storage)
	}
	return d, nil
}
