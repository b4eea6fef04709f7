package api

import (
	"net/url"
	"testing"
	"time"
)

func TestSnakeParams(t *testing.T) {
	t.Parallel()
	v := snakeParams(url.Values{"query.serviceName": {"a"}, "query.start_time_min": {"x"}, "groupByOperation": {"true"},
		"spanKind": {"client"}, "span_kind": {"server"}})
	f := func(k, want string) {
		t.Helper()
		if got := v.Get(k); got != want {
			t.Errorf("snakeParams: %s = %q, want %q", k, got, want)
		}
	}
	f("query.service_name", "a")
	f("query.start_time_min", "x")
	f("group_by_operation", "true")
	f("span_kind", "server") // sent as snake_case: it wins
}

func TestProtoDuration(t *testing.T) {
	t.Parallel()
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := protoDuration(d); got != want {
			t.Errorf("protoDuration(%v) = %q, want %q", d, got, want)
		}
	}
	f(0, "0s")
	f(1500*time.Millisecond, "1.5s")
	f(3*time.Second, "3s")
	f(1234*time.Nanosecond, "0.000001234s")
}

func TestASLList(t *testing.T) {
	t.Parallel()
	if got, want := aslList([]string{"a,b", ":x", "(", "c d", "ok:1"}), `a\u002cb,\u003ax,\u0028,c\u0020d,ok:1`; got != want {
		t.Errorf("aslList = %s, want %s", got, want)
	}
}
