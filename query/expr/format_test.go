package expr

import (
	"math"
	"testing"
)

func TestFormatDouble(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		if got := FormatDouble(v); got != want {
			t.Errorf("FormatDouble(%v) = %q, want %q", v, got, want)
		}
	}
	f(42, "42.0")
	f(-1, "-1.0")
	f(0.1, "0.1")
	f(0.001, "0.001")
	f(1e-4, "1.0E-4")
	f(1.5e-7, "1.5E-7")
	f(1e7, "1.0E7")
	f(9999999, "9999999.0")
	f(1.2345e10, "1.2345E10")
	f(math.NaN(), "NaN")
	f(math.Inf(1), "Infinity")
	f(math.Inf(-1), "-Infinity")
	f(0, "0.0")
	f(math.Copysign(0, -1), "-0.0")
	f(9.36e-07, "9.36E-7")
	buf := make([]byte, 0, 32)
	if n := testing.AllocsPerRun(100, func() { buf = AppendDouble(buf[:0], 1.2345e10) }); n > 0 {
		t.Errorf("AppendDouble allocates %v times", n)
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	f := func(in string, want int64) {
		t.Helper()
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	f("5m", 300_000)
	f("1h", 3600_000)
	f("1w", 7*86400_000)
	f("2 days", 2*86400_000)
	f("500ms", 500)
	f("90s", 90_000)
	f("1month", 30*86400_000)
	f("1y", 365*86400_000)
	f("PT1H", 3600_000)
	f("P2DT6H5M", 2*86400_000+6*3600_000+5*60_000)
	f("PT0.5S", 500)
	f("-PT1M", -60_000)
	f("P1W", 7*86400_000)
	for _, bad := range []string{"", "m", "5", "5parsecs", "P", "PT", "P1H", "PT1D", "P1DT", "99999999999999999y", "PT1M1M"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
	if FormatDuration(3600_000) != "1h" || FormatDuration(90_000) != "90s" || FormatDuration(1500) != "1500ms" || FormatDuration(7*86400_000) != "1w" {
		t.Errorf("FormatDuration")
	}
}
