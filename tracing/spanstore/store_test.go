package spanstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/tracing"
)

// base is the fixtures' time origin: 2026-11-24 10:00 UTC.
var base = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func tid(n int) tracing.TraceID {
	var id tracing.TraceID
	id[0], id[15] = 0xab, byte(n)
	id[14] = byte(n >> 8)
	return id
}

func sid(trace, n int) tracing.SpanID {
	var id tracing.SpanID
	id[0], id[6], id[7] = 0xcd, byte(trace), byte(n)
	return id
}

// spec describes one fixture span.
type spec struct {
	trace, span, parent int // parent 0: root
	service, name       string
	kind                ptrace.SpanKind
	err                 bool
	start, dur          time.Duration // from base
	attrs               map[string]any
}

// build groups specs by service into one OTLP request.
func build(specs ...spec) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, sp := range specs {
		ss, ok := bySvc[sp.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", sp.service)
			rs.Resource().Attributes().PutStr("host.name", "host-"+sp.service)
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("fixture")
			sc.Scope().SetVersion("1.0")
			ss = sc.Spans()
			bySvc[sp.service] = ss
		}
		s := ss.AppendEmpty()
		s.SetTraceID(pcommon.TraceID(tid(sp.trace)))
		s.SetSpanID(pcommon.SpanID(sid(sp.trace, sp.span)))
		if sp.parent != 0 {
			s.SetParentSpanID(pcommon.SpanID(sid(sp.trace, sp.parent)))
		}
		s.SetName(sp.name)
		s.SetKind(sp.kind)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(sp.start)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(sp.start + sp.dur)))
		if sp.err {
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage("it broke")
		}
		for k, v := range sp.attrs {
			switch v := v.(type) {
			case string:
				s.Attributes().PutStr(k, v)
			case int:
				s.Attributes().PutInt(k, int64(v))
			case float64:
				s.Attributes().PutDouble(k, v)
			case bool:
				s.Attributes().PutBool(k, v)
			case []byte:
				s.Attributes().PutEmptyBytes(k).FromRaw(v)
			case []string:
				sl := s.Attributes().PutEmptySlice(k)
				for _, x := range v {
					sl.AppendEmpty().SetStr(x)
				}
			}
		}
	}
	return td
}

// fixtures: trace 1 crosses frontend → catalog (written in two writes, the
// child first); trace 2 is a failing frontend request; trace 3 is slow.
func writeFixtures(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	child := build(
		spec{trace: 1, span: 3, parent: 2, service: "catalog", name: "GET /titles/{id}", kind: ptrace.SpanKindServer, start: 2 * time.Millisecond, dur: 10 * time.Millisecond,
			attrs: map[string]any{"http.route": "/titles/{id}", "http.response.status_code": 200, "cache.hit": false, "ratio": 0.25, "raw": []byte{1, 2}, "tags": []string{"a", "b"}}},
	)
	ev := child.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Events().AppendEmpty()
	ev.SetName("cache.miss")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(3 * time.Millisecond)))
	ev.Attributes().PutStr("key", "title:42")
	ln := child.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Links().AppendEmpty()
	ln.SetTraceID(pcommon.TraceID(tid(2)))
	ln.SetSpanID(pcommon.SpanID(sid(2, 1)))
	if err := s.WriteTraces(ctx, child); err != nil {
		t.Fatal(err)
	}
	parents := build(
		spec{trace: 1, span: 1, service: "frontend", name: "GET /api/home", kind: ptrace.SpanKindServer, start: 0, dur: 20 * time.Millisecond,
			attrs: map[string]any{"http.route": "/api/home", "user.id": "u42"}},
		spec{trace: 1, span: 2, parent: 1, service: "frontend", name: "catalog.title", kind: ptrace.SpanKindClient, start: time.Millisecond, dur: 12 * time.Millisecond},
		spec{trace: 2, span: 1, service: "frontend", name: "GET /api/home", kind: ptrace.SpanKindServer, err: true, start: time.Minute, dur: 5 * time.Millisecond,
			attrs: map[string]any{"http.route": "/api/home", "user.id": "u7"}},
		spec{trace: 3, span: 1, service: "frontend", name: "POST /api/play/{id}", kind: ptrace.SpanKindServer, start: 2 * time.Minute, dur: 900 * time.Millisecond,
			attrs: map[string]any{"http.route": "/api/play/{id}", "user.id": "u42"}},
		spec{trace: 3, span: 2, parent: 1, service: "frontend", name: "render", kind: ptrace.SpanKindInternal, start: 2*time.Minute + 950*time.Millisecond, dur: 50 * time.Millisecond},
	)
	if err := s.WriteTraces(ctx, parents); err != nil {
		t.Fatal(err)
	}
}

// openers are the ways the suite runs: on an in-memory file system, on
// disk, and on disk after closing and reopening.
func openers(t *testing.T) map[string]func(t *testing.T, now func() time.Time) *Store {
	return map[string]func(t *testing.T, now func() time.Time) *Store{
		"memfs": func(t *testing.T, now func() time.Time) *Store {
			s, err := Open("", Options{FS: vfs.NewMem(), Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			writeFixtures(t, s)
			return s
		},
		"disk-reopened": func(t *testing.T, now func() time.Time) *Store {
			dir := t.TempDir()
			s, err := Open(dir, Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			writeFixtures(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

func TestStore(t *testing.T) {
	for name, open := range openers(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			now := func() time.Time { return base.Add(time.Hour) }
			s := open(t, now)
			testGetTrace(t, s)
			testCatalog(t, s)
			testFind(t, s)
			testDependencies(t, s)
			testExemplars(t, s)
		})
	}
}

func testGetTrace(t *testing.T, s *Store) {
	ctx := context.Background()
	tr, err := s.GetTrace(ctx, tid(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Spans) != 3 {
		t.Fatalf("trace 1 has %d spans, want 3", len(tr.Spans))
	}
	names := []string{tr.Spans[0].Name, tr.Spans[1].Name, tr.Spans[2].Name}
	if !slices.Equal(names, []string{"GET /api/home", "catalog.title", "GET /titles/{id}"}) {
		t.Errorf("spans in start order: %v", names)
	}
	c := tr.Spans[2]
	want := tracing.Span{
		TraceID: tid(1), SpanID: sid(1, 3), ParentSpanID: sid(1, 2), Name: "GET /titles/{id}", Kind: tracing.SpanKindServer,
		Start: base.Add(2 * time.Millisecond).UnixNano(), End: base.Add(12 * time.Millisecond).UnixNano(),
		ScopeName: "fixture", ScopeVersion: "1.0",
		Resource: &tracing.Resource{Service: "catalog", Attributes: []tracing.KeyValue{{Key: "host.name", Str: "host-catalog"}}},
		Events:   []tracing.Event{{Time: base.Add(3 * time.Millisecond).UnixNano(), Name: "cache.miss", Attributes: []tracing.KeyValue{{Key: "key", Str: "title:42"}}}},
		Links:    []tracing.Link{{TraceID: tid(2), SpanID: sid(2, 1)}},
	}
	attrs := map[string]tracing.KeyValue{}
	for _, kv := range c.Attributes {
		attrs[kv.Key] = kv
	}
	c.Attributes = nil
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("catalog span (-want +got):\n%s", diff)
	}
	wantAttrs := map[string]tracing.KeyValue{
		"http.route":                {Key: "http.route", Str: "/titles/{id}"},
		"http.response.status_code": {Key: "http.response.status_code", Type: tracing.ValueInt, Int: 200},
		"cache.hit":                 {Key: "cache.hit", Type: tracing.ValueBool, Int: 0},
		"ratio":                     {Key: "ratio", Type: tracing.ValueFloat, Float: 0.25},
		"raw":                       {Key: "raw", Type: tracing.ValueBytes, Str: "\x01\x02"},
		"tags":                      {Key: "tags", Str: `["a","b"]`},
	}
	if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if _, err := s.GetTrace(ctx, tid(99)); !errors.Is(err, tracing.ErrNotFound) {
		t.Errorf("unknown trace: %v, want ErrNotFound", err)
	}
}

func testCatalog(t *testing.T, s *Store) {
	ctx := context.Background()
	svcs, _ := s.Services(ctx)
	if !slices.Equal(svcs, []string{"catalog", "frontend"}) {
		t.Errorf("services %v", svcs)
	}
	ops, _ := s.Operations(ctx, "frontend", tracing.SpanKindUnspecified)
	want := []tracing.Operation{{Name: "GET /api/home", Kind: tracing.SpanKindServer}, {Name: "POST /api/play/{id}", Kind: tracing.SpanKindServer},
		{Name: "catalog.title", Kind: tracing.SpanKindClient}, {Name: "render", Kind: tracing.SpanKindInternal}}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	ops, _ = s.Operations(ctx, "frontend", tracing.SpanKindClient)
	if len(ops) != 1 || ops[0].Name != "catalog.title" {
		t.Errorf("client operations %v", ops)
	}
}

func testFind(t *testing.T, s *Store) {
	ctx := context.Background()
	all := tracing.Query{Service: "frontend", Start: base.Add(-time.Hour).UnixNano(), End: base.Add(time.Hour).UnixNano(), Limit: 20}
	re := func(s string) *regexp.Regexp { return regexp.MustCompile("^(?:" + s + ")$") }
	for _, tc := range []struct {
		name string
		edit func(q *tracing.Query)
		want []int
	}{
		{"service, newest first", func(q *tracing.Query) {}, []int{3, 2, 1}},
		{"other service", func(q *tracing.Query) { q.Service = "catalog" }, []int{1}},
		{"unknown service", func(q *tracing.Query) { q.Service = "nope" }, nil},
		{"operation", func(q *tracing.Query) { q.Operation = "GET /api/home" }, []int{2, 1}},
		{"kind", func(q *tracing.Query) { q.Kind = tracing.SpanKindClient }, []int{1}},
		{"errors", func(q *tracing.Query) { q.Status = tracing.StatusError }, []int{2}},
		{"not errors", func(q *tracing.Query) { q.Status = tracing.StatusOK }, []int{3, 1}},
		{"limit", func(q *tracing.Query) { q.Limit = 2 }, []int{3, 2}},
		{"span min duration", func(q *tracing.Query) { q.MinDuration = 100 * time.Millisecond }, []int{3}},
		{"span max duration", func(q *tracing.Query) { q.MaxDuration = 10 * time.Millisecond }, []int{2}},
		{"duration on one span", func(q *tracing.Query) { q.Operation = "render"; q.MinDuration = 100 * time.Millisecond }, nil},
		{"trace min duration", func(q *tracing.Query) { q.MinTraceDuration = time.Second }, []int{3}},
		{"trace max duration", func(q *tracing.Query) { q.MaxTraceDuration = 15 * time.Millisecond }, []int{2}},
		{"time window", func(q *tracing.Query) {
			q.Start, q.End = base.Add(30*time.Second).UnixNano(), base.Add(90*time.Second).UnixNano()
		}, []int{2}},
		{"attr exact", func(q *tracing.Query) {
			q.Attributes = []tracing.AttrFilter{{Key: "user.id", Value: "u42"}}
		}, []int{3, 1}},
		{"attrs on one span", func(q *tracing.Query) {
			q.Attributes = []tracing.AttrFilter{{Key: "user.id", Value: "u42"}, {Key: "http.route", Value: "/api/home"}}
		}, []int{1}},
		{"attr prefix", func(q *tracing.Query) {
			q.Attributes = []tracing.AttrFilter{{Key: "http.route", Match: tracing.MatchPrefix, Value: "/api/pl"}}
		}, []int{3}},
		{"attr regex", func(q *tracing.Query) {
			q.Attributes = []tracing.AttrFilter{{Key: "user.id", Match: tracing.MatchRegex, Regex: re("u[0-9]")}}
		}, []int{2}},
		{"int attr as text", func(q *tracing.Query) {
			q.Service = "catalog"
			q.Attributes = []tracing.AttrFilter{{Key: "http.response.status_code", Value: "200"}, {Key: "cache.hit", Value: "false"}}
		}, []int{1}},
		{"resource attr", func(q *tracing.Query) {
			q.Attributes = []tracing.AttrFilter{{Key: "host.name", Value: "host-frontend"}}
		}, []int{3, 2, 1}},
		{"derived error tag", func(q *tracing.Query) {
			q.Attributes = []tracing.AttrFilter{{Key: "error", Value: "true"}}
		}, []int{2}},
		{"derived kind tag", func(q *tracing.Query) {
			q.Attributes = []tracing.AttrFilter{{Key: "span.kind", Value: "internal"}}
		}, []int{3}},
	} {
		q := all
		tc.edit(&q)
		got, err := s.FindTraces(ctx, q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var ids []int
		for _, tr := range got {
			ids = append(ids, int(tr.ID[15]))
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: traces %v, want %v", tc.name, ids, tc.want)
		}
	}
	// Found traces are complete, spans of every service included.
	got, _ := s.FindTraces(ctx, tracing.Query{Service: "catalog", Start: all.Start, End: all.End, Limit: 1})
	if len(got) != 1 || len(got[0].Spans) != 3 {
		t.Errorf("found trace is not complete: %v", got)
	}
}

func testDependencies(t *testing.T, s *Store) {
	deps, err := s.Dependencies(context.Background(), base.Add(-time.Hour).UnixNano(), base.Add(time.Hour).UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	want := []tracing.Dependency{{Parent: "frontend", Child: "catalog", CallCount: 1}}
	if diff := cmp.Diff(want, deps); diff != "" {
		t.Errorf("dependencies (-want +got):\n%s", diff)
	}
	deps, _ = s.Dependencies(context.Background(), base.Add(time.Hour).UnixNano(), base.Add(2*time.Hour).UnixNano())
	if len(deps) != 0 {
		t.Errorf("dependencies outside the window: %v", deps)
	}
}

func testExemplars(t *testing.T, s *Store) {
	ctx := context.Background()
	t0 := base.UnixMilli()
	in := []tracing.Exemplar{
		{Tags: map[string]string{"service.name": "frontend", "operation": "GET /api/home"}, T: t0 + 60_000, TraceID: tid(1), SpanID: sid(1, 1), Duration: 20 * time.Millisecond},
		{Tags: map[string]string{"service.name": "catalog", "operation": "x"}, T: t0 + 120_000, TraceID: tid(3), SpanID: sid(3, 1), Duration: time.Second},
	}
	if err := s.WriteExemplars(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Exemplars(ctx, t0, t0+60_001)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in[:1], got); diff != "" {
		t.Errorf("exemplars (-want +got):\n%s", diff)
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	now := base.Add(time.Hour)
	s, err := Open("", Options{FS: vfs.NewMem(), Now: func() time.Time { return now }, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeFixtures(t, s)
	later := build(spec{trace: 9, span: 1, service: "frontend", name: "late", start: 30 * time.Hour, dur: time.Millisecond})
	if err := s.WriteTraces(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	if err := s.Retain(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTrace(context.Background(), tid(1)); err != nil {
		t.Fatalf("retention removed a trace within it: %v", err)
	}
	now = base.Add(26 * time.Hour) // fixtures ended more than 24 h ago
	if err := s.Retain(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3} {
		if _, err := s.GetTrace(context.Background(), tid(n)); !errors.Is(err, tracing.ErrNotFound) {
			t.Errorf("trace %d after retention: %v", n, err)
		}
	}
	got, _ := s.FindTraces(context.Background(), tracing.Query{Service: "frontend", Start: 0, End: base.Add(48 * time.Hour).UnixNano(), Limit: 10})
	if len(got) != 1 || got[0].ID != tid(9) {
		t.Errorf("search after retention: %d traces", len(got))
	}
	deps, _ := s.Dependencies(context.Background(), 0, base.Add(48*time.Hour).UnixNano())
	if len(deps) != 0 {
		t.Errorf("dependencies after retention: %v", deps)
	}
	// The catalog forgets what has no spans left.
	if svcs, _ := s.Services(context.Background()); !slices.Equal(svcs, []string{"frontend"}) {
		t.Errorf("services after retention: %v", svcs)
	}
	if ops, _ := s.Operations(context.Background(), "frontend", tracing.SpanKindUnspecified); len(ops) != 1 || ops[0].Name != "late" {
		t.Errorf("operations after retention: %v", ops)
	}
}

func TestSizeCap(t *testing.T) {
	t.Parallel()
	now := base.Add(3 * time.Hour)
	s, err := Open("", Options{FS: vfs.NewMem(), Now: func() time.Time { return now }, MaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for h := range 3 {
		td := build(spec{trace: h + 1, span: 1, service: "svc", name: "op", start: time.Duration(h) * time.Hour, dur: time.Second})
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	// Over the cap: each pass drops the oldest hour.
	if err := s.Retain(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTrace(context.Background(), tid(1)); !errors.Is(err, tracing.ErrNotFound) {
		t.Errorf("oldest trace survived the size cap: %v", err)
	}
	if _, err := s.GetTrace(context.Background(), tid(3)); err != nil {
		t.Errorf("newest trace dropped: %v", err)
	}
}

func TestSequenceContinuesAfterReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 3 {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		td := build(spec{trace: i + 1, span: 1, service: "svc", name: fmt.Sprint("op", i), dur: time.Millisecond})
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		if tr, err := s.GetTrace(context.Background(), tid(i+1)); err != nil || len(tr.Spans) != 1 {
			t.Errorf("trace %d after reopens: %v %v (a block overwritten?)", i+1, tr, err)
		}
	}
}

// TestBloom: a search entry's bloom has every attribute pair of its spans
// and processes, in the text filters compare, and few others.
func TestBloom(t *testing.T) {
	t.Parallel()
	w := new(blockWriter)
	var specs []spec
	for i := range 10 {
		specs = append(specs, spec{trace: 1, span: i + 1, service: "svc", name: "op", dur: time.Millisecond,
			attrs: map[string]any{"user.id": fmt.Sprint("u", i), "n": i, "ok": i%2 == 0, "ratio": 0.5, "tags": []string{"a"}}})
	}
	w.encode(build(specs...))
	idx := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	_, bloom, err := decodeDigests(nil, appendDigests(nil, w, idx, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		for _, kv := range [][2]string{{"user.id", fmt.Sprint("u", i)}, {"n", fmt.Sprint(i)}, {"ok", fmt.Sprint(i%2 == 0)},
			{"ratio", "0.5"}, {"tags", `["a"]`}, {"host.name", "host-svc"}} {
			if !bloomHas(bloom, attrHash(kv[0], kv[1])) {
				t.Errorf("bloom lacks %s=%s", kv[0], kv[1])
			}
		}
	}
	fp := 0
	for i := range 10000 {
		if bloomHas(bloom, attrHash("user.id", fmt.Sprint("absent", i))) {
			fp++
		}
	}
	if fp > 300 {
		t.Errorf("%d false positives in 10 000", fp)
	}
}

// TestDictionary: prefix and regex filters give the same answers whether
// the hour's value dictionary lists the key, lists it as overflowed, or
// does not follow the hour at all.
func TestDictionary(t *testing.T) {
	t.Parallel()
	s, err := Open("", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	write := func(specs ...spec) {
		t.Helper()
		if err := s.WriteTraces(ctx, build(specs...)); err != nil {
			t.Fatal(err)
		}
	}
	// Hour 0: a listed key (route), a key with more distinct values than
	// the dictionary keeps (request.id), and a value too long to list.
	var specs []spec
	for i := range maxDictValues + 10 {
		specs = append(specs, spec{trace: 1 + i/100, span: 1 + i%100, service: "api", name: "op", start: time.Duration(i) * time.Microsecond, dur: time.Millisecond,
			attrs: map[string]any{"route": fmt.Sprint("/r/", i%3), "request.id": fmt.Sprint("req-", i)}})
	}
	specs = append(specs, spec{trace: 999, span: 1, service: "api", name: "op", dur: time.Millisecond,
		attrs: map[string]any{"blob": "x" + strings.Repeat("y", 300)}})
	write(specs...)
	// Hour 10, then hour 1: a late write for an hour the tracker no longer follows.
	write(spec{trace: 2000, span: 1, service: "api", name: "op", start: 10 * time.Hour, dur: time.Millisecond, attrs: map[string]any{"route": "/late/new"}})
	write(spec{trace: 2001, span: 1, service: "api", name: "op", start: time.Hour, dur: time.Millisecond, attrs: map[string]any{"route": "/late/old"}})

	h0, h1 := hourOf(base.UnixNano()), hourOf(base.Add(time.Hour).UnixNano())
	for _, tc := range []struct {
		hour   uint32
		f      tracing.AttrFilter
		listed bool
		n      int
	}{
		{h0, tracing.AttrFilter{Key: "route", Match: tracing.MatchPrefix, Value: "/r/"}, true, 3},
		{h0, tracing.AttrFilter{Key: "route", Match: tracing.MatchRegex, Regex: regexp.MustCompile(`^(?:/r/[12])$`)}, true, 2},
		{h0, tracing.AttrFilter{Key: "route", Match: tracing.MatchPrefix, Value: "/none"}, true, 0},
		{h0, tracing.AttrFilter{Key: "absent", Match: tracing.MatchPrefix, Value: "a"}, true, 0},
		{h0, tracing.AttrFilter{Key: "request.id", Match: tracing.MatchPrefix, Value: "req-1"}, false, 0},
		{h0, tracing.AttrFilter{Key: "blob", Match: tracing.MatchPrefix, Value: "x"}, false, 0},
		{h1, tracing.AttrFilter{Key: "route", Match: tracing.MatchPrefix, Value: "/late"}, false, 0},
	} {
		vals, listed, err := s.dictValues(tc.hour, &tc.f)
		if err != nil || listed != tc.listed || len(vals) != tc.n {
			t.Errorf("dictValues(%d, %s %v %q) = %d values, listed %v, %v; want %d, %v", tc.hour-h0, tc.f.Key, tc.f.Match, tc.f.Value, len(vals), listed, err, tc.n, tc.listed)
		}
	}
	// The searches agree with the data, listed or not.
	search := func(f tracing.AttrFilter) int {
		t.Helper()
		got, err := s.FindTraces(ctx, tracing.Query{Service: "api", Attributes: []tracing.AttrFilter{f}, Start: 0, End: base.Add(24 * time.Hour).UnixNano(), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	for _, tc := range []struct {
		f tracing.AttrFilter
		n int
	}{
		{tracing.AttrFilter{Key: "route", Match: tracing.MatchPrefix, Value: "/r/"}, 42},
		{tracing.AttrFilter{Key: "route", Match: tracing.MatchPrefix, Value: "/late/"}, 2},
		{tracing.AttrFilter{Key: "route", Match: tracing.MatchRegex, Regex: regexp.MustCompile(`^(?:/late/old)$`)}, 1},
		{tracing.AttrFilter{Key: "request.id", Match: tracing.MatchPrefix, Value: "req-4105"}, 1},
		{tracing.AttrFilter{Key: "request.id", Match: tracing.MatchRegex, Regex: regexp.MustCompile(`^(?:req-40[0-9][0-9])$`)}, 1},
		{tracing.AttrFilter{Key: "blob", Match: tracing.MatchPrefix, Value: "xyyy"}, 1},
		{tracing.AttrFilter{Key: "absent", Match: tracing.MatchPrefix, Value: ""}, 0},
	} {
		if n := search(tc.f); n != tc.n {
			t.Errorf("search %s %v %q: %d traces, want %d", tc.f.Key, tc.f.Match, tc.f.Value, n, tc.n)
		}
	}
}

// TestSpansWrittenTwice: a trace written twice, as a retried export or a
// cluster store node replaying the log after a crash writes it, reads
// back with each span once, by id and by search.
func TestSpansWrittenTwice(t *testing.T) {
	t.Parallel()
	s, err := Open("", Options{FS: vfs.NewMem(), Now: func() time.Time { return base.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	td := build(spec{trace: 1, span: 1, service: "svc", name: "op", dur: time.Millisecond},
		spec{trace: 1, span: 2, parent: 1, service: "svc", name: "child", dur: time.Millisecond})
	for range 2 {
		if err := s.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := s.GetTrace(ctx, tid(1))
	if err != nil || len(tr.Spans) != 2 {
		t.Fatalf("GetTrace of a trace written twice: %d spans, %v; want 2", len(tr.Spans), err)
	}
	found, err := s.FindTraces(ctx, tracing.Query{Service: "svc", Start: base.Add(-time.Hour).UnixNano(), End: base.Add(time.Hour).UnixNano(), Limit: 10})
	if err != nil || len(found) != 1 || len(found[0].Spans) != 2 {
		t.Fatalf("FindTraces of a trace written twice: %v, %v; want one trace of 2 spans", found, err)
	}
}
