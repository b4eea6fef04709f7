package ingest

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/lib/wire"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestWirePayload decodes what lib/wire encodes: the client library and
// the server agree on the payload, escapes and non-finite values included.
func TestWirePayload(t *testing.T) {
	t.Parallel()
	body := wire.AppendPayload(nil, []wire.Tag{{Key: "nf.app", Value: "checkout"}}, []wire.Datapoint{
		{Tags: []wire.Tag{{Key: "name", Value: "requests"}, {Key: "statistic", Value: "count"}}, Timestamp: 1_700_000_000_000, Value: 2.5},
		{Tags: []wire.Tag{{Key: "name", Value: "odd \"chars\"\n"}}, Timestamp: 1, Value: math.NaN()},
		{Tags: []wire.Tag{{Key: "name", Value: "big"}}, Timestamp: 2, Value: math.Inf(1)},
		{Tags: []wire.Tag{{Key: "name", Value: "tiny"}}, Timestamp: 3, Value: 1e-300},
	})
	got, err := decodeString(t, string(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []decodedMetric{
		{tags.New("name", "requests", "nf.app", "checkout", "statistic", "count"), 1_700_000_000_000, 2.5, true},
		{tags.New("name", "odd \"chars\"\n", "nf.app", "checkout"), 1, math.NaN(), true},
		{tags.New("name", "big", "nf.app", "checkout"), 2, math.Inf(1), true},
		{tags.New("name", "tiny", "nf.app", "checkout"), 3, 1e-300, true},
	}
	if diff := cmp.Diff(want, got.Metrics, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	// The same rules on both sides.
	r := wire.DefaultRules()
	if reason, _ := r.Validate([]wire.Tag{{Key: "name", Value: "x"}}); reason != wire.ReasonValueLength {
		t.Errorf("short name: %q", reason)
	}
	if reason, _ := DefaultRules().Validate(tags.New("name", "x")); reason != wire.ReasonValueLength {
		t.Errorf("short name on the server: %q", reason)
	}
}
