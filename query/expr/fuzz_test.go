package expr

import (
	"testing"
	"time"
	_ "time/tzdata"
)

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5m", "1h", "PT1H", "P2DT6H5M", "-PT1M", "1month", "3 days", "PT0.5S", "P1W", "999999999999999w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d > maxDurationMs || d < -maxDurationMs {
			t.Fatalf("ParseDuration(%q) = %d, beyond the bound", s, d)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "e-3h", "now-1w", "s+P2DT6H5M", "1700000000", "1700000000000", "2024-01-02",
		"2024-01-02T15:04", "2024-01-02T15:04:05.123Z", "2024-01-02T15:04+02:00", "epoch", "gs", "99999999999999999999"} {
		f.Add(s)
	}
	loc, err := time.LoadLocation("US/Pacific")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseTime(s, loc, 1_700_000_000_000, TimeRefs{"s": 1, "e": 2, "gs": 3, "ge": 4})
	})
}
