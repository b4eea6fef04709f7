package ingest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// exact reads one step of the series with exactly the tags kv among
// name and the keys named: an empty value means the key is absent.
func (e *env) exact(ts int64, kv ...string) float64 {
	e.t.Helper()
	q := tags.True()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q = tags.And(q, tags.Not(tags.Has(kv[i])))
		} else {
			q = tags.And(q, tags.Eq(kv[i], kv[i+1]))
		}
	}
	set, err := e.store.Fetch(context.Background(), tsdb.FetchRequest{Query: q, Start: ts, End: ts + minute, Step: minute, Aggregation: tsdb.AggSum})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(set.Series) != 1 {
		return -float64(len(set.Series))
	}
	return set.Series[0].Values[0]
}

// refCount reads a sextant.ingest.refcache counter.
func refCount(reg *lib.Registry, result string) float64 {
	return reg.Counter("sextant.ingest.refcache", "result", result).Count()
}

func TestRefCacheHits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := func(ts int64, v int) []byte {
		var ms []string
		for i := range 3 {
			ms = append(ms, metricJSON(fmt.Sprintf(`"name":"mm%d","atlas.dstype":"gauge"`, i), ts, fmt.Sprint(v+i)))
		}
		return payload(`"nf.app":"www"`, ms...)
	}
	for k, ts := range []int64{now - 2*minute, now - minute, now} {
		if code, _, resp := e.post("/api/v1/publish", body(ts, 10*k)); code != 200 {
			t.Fatalf("post %d: %d %v", k, code, resp)
		}
	}
	if got := refCount(e.reg, "hit"); got != 6 {
		t.Errorf("hits = %v, want 6 (3 series, twice)", got)
	}
	for k, ts := range []int64{now - 2*minute, now - minute, now} {
		for i := range 3 {
			if v := e.value(ts, "name", fmt.Sprintf("mm%d", i), "nf.app", "www"); v != float64(10*k+i) {
				t.Errorf("m%d at step %d = %v, want %d", i, k, v, 10*k+i)
			}
		}
	}
}

// TestRefCacheCommonTags: the same metric text under other common tags is
// another series; common tags after the metrics, or twice, are handled.
func TestRefCacheCommonTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	m := func(ts int64, v string) string { return metricJSON(`"name":"cpu","atlas.dstype":"gauge"`, ts, v) }
	posts := []struct {
		body string
		want map[string]float64 // nf.app → value at its step
	}{
		{string(payload(`"nf.app":"a"`, m(now-minute, "1"))), nil},
		{string(payload(`"nf.app":"b"`, m(now-minute, "2"))), nil},
		{string(payload(`"nf.app":"a"`, m(now, "3"))), nil},
		// Common tags after the metrics: keyed after the scan.
		{`{"metrics":[` + m(now-minute, "4") + `],"tags":{"nf.app":"c"}}`, nil},
		{`{"metrics":[` + m(now, "5") + `],"tags":{"nf.app":"c"}}`, nil},
		// Two common objects merge: the metric text alone is no key.
		{`{"tags":{"nf.app":"a"},"metrics":[` + m(now, "6") + `],"tags":{"nf.stack":"s"}}`, nil},
		// No common tags at all.
		{`{"metrics":[` + m(now-minute, "7") + `]}`, nil},
		{`{"metrics":[` + m(now, "8") + `]}`, nil},
	}
	for _, p := range posts {
		if code, _, resp := e.post("/api/v1/publish", []byte(p.body)); code != 200 {
			t.Fatalf("%s: %d %v", p.body, code, resp)
		}
	}
	f := func(ts int64, want float64, kv ...string) {
		t.Helper()
		if v := e.exact(ts, append([]string{"name", "cpu"}, kv...)...); v != want {
			t.Errorf("%v at %d = %v, want %v", kv, ts, v, want)
		}
	}
	f(now-minute, 1, "nf.app", "a", "nf.stack", "")
	f(now, 3, "nf.app", "a", "nf.stack", "")
	f(now-minute, 2, "nf.app", "b")
	f(now-minute, 4, "nf.app", "c")
	f(now, 5, "nf.app", "c")
	f(now, 6, "nf.app", "a", "nf.stack", "s")
	f(now-minute, 7, "nf.app", "")
	f(now, 8, "nf.app", "")
	// Hits: a's second post, c's second (keyed after the scan), the bare one.
	if got := refCount(e.reg, "hit"); got != 3 {
		t.Errorf("hits = %v, want 3", got)
	}
}

// TestRefCacheStale: a series the store deleted (retention) is sent again
// with its tags, stored anew, and its new ref cached.
func TestRefCacheStale(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(now)
	store, err := db.Open("", db.Options{Now: clock.Load, MaintenanceInterval: 1 << 40, MemoryRetention: 2 * hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := lib.NewRegistry(lib.RegistryOptions{})
	h, err := New(Options{Appender: store, Now: clock.Load, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/api/v1/publish", nil)
	post := func(ts int64, v string) {
		t.Helper()
		req := &publishRequest{}
		req.body.WriteString(string(payload(`"nf.app":"www"`,
			metricJSON(`"name":"aa","atlas.dstype":"gauge"`, ts, v), metricJSON(`"name":"bb","atlas.dstype":"gauge"`, ts, v))))
		if status, resp, err := h.ingestPublish(r, req); status != 200 || err != nil {
			t.Fatalf("publish at %d: %d %v %v", ts, status, resp, err)
		}
	}
	count := func() int {
		t.Helper()
		s, _, err := store.Series(context.Background(), tsdb.SeriesRequest{Query: tags.Eq("nf.app", "www"), Start: 0, End: clock.Load() + hour})
		if err != nil {
			t.Fatal(err)
		}
		return len(s)
	}
	post(now, "1")
	post(now+minute, "2")
	if got := refCount(reg, "hit"); got != 2 {
		t.Fatalf("hits = %v, want 2", got)
	}
	later := now + 6*hour
	clock.Store(later)
	if err := store.Maintain(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d series after retention, want 0", n)
	}
	post(later, "3")
	if got := refCount(reg, "stale"); got != 2 {
		t.Errorf("stale = %v, want 2", got)
	}
	if n := count(); n != 2 {
		t.Errorf("%d series after the write, want 2", n)
	}
	post(later+minute, "4")
	if got, stale := refCount(reg, "hit"), refCount(reg, "stale"); got != 6 || stale != 2 {
		t.Errorf("hits, stale = %v, %v, want 6, 2 (the new refs cached)", got, stale)
	}
	for _, tc := range []struct {
		ts   int64
		want float64
	}{{later, 3}, {later + minute, 4}} {
		set, err := store.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "aa"), Start: tc.ts, End: tc.ts + minute, Step: minute, Aggregation: tsdb.AggSum})
		if err != nil || len(set.Series) != 1 || set.Series[0].Values[0] != tc.want {
			t.Errorf("a at %d: %v %v, want %v", tc.ts, set, err, tc.want)
		}
	}
}

// TestRefCacheRejections: the store's rejections of datapoints sent by ref
// name their tags as without the cache.
func TestRefCacheRejections(t *testing.T) {
	t.Parallel()
	var got [2]map[string]any
	for i, maxRefs := range []int{-1, 0} {
		e := newEnv(t, func(o *Options) { o.MaxRefs = maxRefs })
		good := metricJSON(`"name":"cc","atlas.dstype":"counter","xx":"1"`, now, "5")
		if code, _, resp := e.post("/api/v1/publish", payload(`"nf.app":"www"`, good)); code != 200 {
			t.Fatalf("%d %v", code, resp)
		}
		old := metricJSON(`"name":"cc","atlas.dstype":"counter","xx":"1"`, now-minute, "4")
		tooOld := metricJSON(`"name":"cc","atlas.dstype":"counter","xx":"1"`, now-3*hour, "4")
		var code int
		code, _, got[i] = e.post("/api/v1/publish", payload(`"nf.app":"www"`, old, tooOld))
		if code != 400 {
			t.Errorf("maxRefs %d: status %d, want 400", maxRefs, code)
		}
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" || !strings.Contains(fmt.Sprint(got[1]), "tags={atlas.dstype=counter, name=cc, nf.app=www, xx=1}") {
		t.Errorf("without the cache %v, with it (-without +with):\n%s", got[0], diff)
	}
}

// TestRefCacheConcurrent: senders share the cache, whose stripes start
// over all the time (MaxRefs below the series count); every value lands.
func TestRefCacheConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MaxRefs = refStripes * 2 })
	const senders, series, steps = 4, 100, 5
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for k := range steps {
				var ms []string
				for i := range series {
					ms = append(ms, metricJSON(fmt.Sprintf(`"name":"mm","ii":"%d","ss":"%d","atlas.dstype":"gauge"`, i, s), now-int64(k)*minute, fmt.Sprint(1000*s+10*i+k)))
				}
				if code, _, resp := e.post("/api/v1/publish", payload(`"nf.app":"www"`, ms...)); code != 200 {
					t.Errorf("sender %d step %d: %d %v", s, k, code, resp)
				}
			}
		})
	}
	wg.Wait()
	for s := range senders {
		for i := 0; i < series; i += 7 {
			for k := range steps {
				if v := e.value(now-int64(k)*minute, "name", "mm", "ii", fmt.Sprint(i), "ss", fmt.Sprint(s)); v != float64(1000*s+10*i+k) {
					t.Errorf("sender %d series %d step %d = %v, want %d", s, i, k, v, 1000*s+10*i+k)
				}
			}
		}
	}
	if n := e.handler.refs.len(); n > refStripes*2 {
		t.Errorf("cache holds %d refs, more than its bound %d", n, refStripes*2)
	}
	if refCount(e.reg, "evicted") == 0 || refCount(e.reg, "hit") == 0 {
		t.Errorf("evicted %v, hits %v: want both", refCount(e.reg, "evicted"), refCount(e.reg, "hit"))
	}
}

// memAppender is a store in miniature for the differential fuzz test: it
// hands out refs per tag set, resolves them, forgets them on demand (as
// retention does) and records what it stored.
type memAppender struct {
	refs   map[string]tsdb.SeriesRef
	byRef  map[tsdb.SeriesRef]string
	next   tsdb.SeriesRef // refs are never reused, as in the head
	stored []string
}

func newMemAppender() *memAppender {
	return &memAppender{refs: map[string]tsdb.SeriesRef{}, byRef: map[tsdb.SeriesRef]string{}}
}

func (a *memAppender) Append(_ context.Context, b *tsdb.Batch) error {
	b.Rejected = b.Rejected[:0]
	for i := range b.Points {
		p := &b.Points[i]
		key, ok := a.byRef[p.Ref]
		if p.Ref == 0 || !ok {
			if len(p.Tags) == 0 {
				b.Rejected = append(b.Rejected, tsdb.Rejection{Index: i, Reason: tsdb.MissingName})
				continue
			}
			key = p.Tags.String()
			if a.refs[key] == 0 {
				a.next++
				a.refs[key], a.byRef[a.next] = a.next, key
			}
			p.Ref = a.refs[key]
		}
		a.stored = append(a.stored, fmt.Sprintf("%s %d %v", key, p.T, p.V))
	}
	return nil
}

// forget drops every series, as retention would.
func (a *memAppender) forget() { clear(a.refs); clear(a.byRef) }

func FuzzPublishRefCache(f *testing.F) {
	f.Add([]byte(`{"tags":{"nf.app":"www"},"metrics":[{"tags":{"name":"cpu"},"timestamp":1700000000000,"value":42.5}]}`))
	f.Add([]byte(`{"metrics":[{"tags":{"name":"a\u0062"},"start":7,"values":[3,"NaN",null]}],"x":{"y":[true,false,null]},"tags":{"a":"b"}}`))
	f.Add([]byte(`{"tags":{"a":"1"},"metrics":[{"tags":{"name":"x","k":{"n":[1,"}"]}},"timestamp":1},{"tags":{"name":"x"},"tags":{"name":"y"},"timestamp":2}],"tags":{"b":"2"}}`))
	f.Add([]byte(`{"metrics":[{"tags":{"name":"x","bad key":"1"},"timestamp":1},{"timestamp":2,"tags":{"name":"x\"}"}},{"tags":{"name":"z"}}]}`))
	// Errors inside tag objects the scan skips, before other errors.
	f.Add([]byte(`{"tags":{"a":"1"},"metrics":[{"tags":{"name":"x" "k":"v"},"timestamp":1},{"tags":{"name":"yy"},"timestamp":x}]}`))
	f.Add([]byte(`{"metrics":[{"tags":{"name":"x",},"tags":{"name":"yy"},"timestamp":1}],"tags":{"a":"1"}}`))
	f.Add([]byte(`{"tags":{},"metrics":[{"tags":{"name":"xx"},"timestamp":1},{"tags":{"name":"yy"}},{"tags":{"name":1e999}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/publish", nil)
		run := func(h *Handler) string {
			req := &publishRequest{}
			req.body.Write(body)
			status, resp, err := h.ingestPublish(r, req)
			return fmt.Sprintf("%d %v %v", status, resp, err)
		}
		plain, cached := newMemAppender(), newMemAppender()
		hp, err := New(Options{Appender: plain, MaxRefs: -1})
		if err != nil {
			t.Fatal(err)
		}
		hc, err := New(Options{Appender: cached})
		if err != nil {
			t.Fatal(err)
		}
		// Three rounds: the cache fills, hits, and then meets a store that
		// forgot every series.
		for round := range 3 {
			if round == 2 {
				plain.forget()
				cached.forget()
			}
			want, got := run(hp), run(hc)
			if want != got {
				t.Fatalf("round %d: without the cache %s, with it %s", round, want, got)
			}
		}
		// A retried datapoint is stored after the rest of its request.
		slices.Sort(plain.stored)
		slices.Sort(cached.stored)
		if diff := cmp.Diff(plain.stored, cached.stored); diff != "" {
			t.Fatalf("stored (-without +with the cache):\n%s", diff)
		}
	})
}

// TestRefCacheTable checks the open-addressing tables against a map under
// random puts, gets and drops, with keys made to share stripes and home
// slots (long probe runs, wrapping around the table's end), and refs
// both narrow (the head's) and wide (the cluster producer's hashes).
func TestRefCacheTable(t *testing.T) {
	t.Parallel()
	for _, bound := range []int{refStripes * 10_000, refStripes * 20} {
		c := newRefCache(bound)
		model := map[refKey]tsdb.SeriesRef{}
		rng := rand.New(rand.NewPCG(1, uint64(bound)))
		key := func() refKey {
			// 2 stripes (the low bits of key[0]), homes (its top bits)
			// crowded near the table's end; key[1] tells keys of the same
			// home apart, in the bits a slot keeps and in those it drops.
			k0 := (math.MaxUint64-uint64(rng.IntN(300))<<48)&^(refStripes-1) | uint64(rng.IntN(2))
			return refKey{k0, uint64(rng.IntN(4)) | uint64(rng.IntN(2))<<40}
		}
		for op := range 200_000 {
			k := key()
			k[1] &= keyBits // keys differing only in dropped bits are one key
			switch rng.IntN(3) {
			case 0:
				ref := tsdb.SeriesRef(op + 1)
				if rng.IntN(4) == 0 {
					ref = ref<<32 | 1 // wide
				}
				if c.put(k, ref) {
					clear(model) // the stripe started over: forget all, check less
				}
				model[k] = ref
			case 1:
				if ref, ok := model[k]; ok {
					c.drop(k, ref)
					delete(model, k)
				}
			}
			got := c.get(k)
			if want, ok := model[k]; ok && got != want {
				t.Fatalf("bound %d op %d: get(%x) = %d, want %d", bound, op, k, got, want)
			} else if !ok && got != 0 && bound > refStripes*20 {
				t.Fatalf("bound %d op %d: get(%x) = %d, want none", bound, op, k, got)
			}
		}
		if n := c.len(); n > bound {
			t.Errorf("bound %d: %d entries", bound, n)
		}
		for i := range c.stripes {
			st := &c.stripes[i]
			if wide := len(st.mu.wide) - len(st.mu.free); wide > st.mu.n {
				t.Errorf("bound %d stripe %d: %d wide refs held for %d entries", bound, i, wide, st.mu.n)
			}
		}
	}
}

// TestRefCacheMemory holds the cache to its memory per entry: the point
// of its 16-byte slots and tables grown by half.
func TestRefCacheMemory(t *testing.T) {
	t.Parallel()
	if s := unsafe.Sizeof(refSlot{}); s != 16 {
		t.Errorf("a slot is %d bytes, want 16", s)
	}
	if s := unsafe.Sizeof(refStripe{}); s%64 != 0 {
		t.Errorf("a stripe is %d bytes, want a multiple of a cache line", s)
	}
	const n = 200_000
	c := newRefCache(10 * n)
	var seeds refKey
	for i := range n {
		k := c.key(seeds, []byte(strconv.Itoa(i)))
		c.put(k, tsdb.SeriesRef(i+1))
	}
	slots := 0
	for i := range c.stripes {
		slots += len(c.stripes[i].mu.slots)
	}
	if per := float64(slots*16) / n; per > 32 {
		t.Errorf("%.1f bytes of slots per entry, want at most 32", per)
	}
	if c.len() != n {
		t.Errorf("len = %d, want %d", c.len(), n)
	}
}

// TestStringEnd checks the eight-bytes-at-a-time scan against a plain one
// at every offset of random texts dense in quotes, escapes and bytes next
// to them in value ('!', '#', '[', ']', 0x80 and above).
func TestStringEnd(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(2, 3))
	alphabet := []byte("ab!#\"\\[]\x00\xa2\xdc\xff")
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte(rng.IntN(256))
			}
		}
		for i := 0; i <= len(b); i++ {
			want := i
			for want < len(b) && b[want] != '"' && b[want] != '\\' {
				want++
			}
			if got := stringEnd(b, i); got != want {
				t.Fatalf("stringEnd(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
	}
}

// TestFlatObjectEnd checks the word-at-a-time end of a flat object
// against the byte-by-byte scan on random texts dense in the bytes that
// matter, at every opening brace: when it answers, it agrees.
func TestFlatObjectEnd(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(4, 5))
	alphabet := []byte(`"""""{}}}[]\|:,ab~^`)
	answered := 0
	for range 20_000 {
		b := make([]byte, 1+rng.IntN(60))
		b[0] = '{'
		for i := 1; i < len(b); i++ {
			if rng.IntN(3) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = 'a' + byte(rng.IntN(26))
			}
		}
		for i := range b {
			if b[i] != '{' {
				continue
			}
			d := publishDecoder{b: b, i: i}
			want := d.objectEnd() // the fast path first, then the slow one
			if got, ok := flatObjectEnd(b, i); ok {
				answered++
				slow := slowObjectEnd(b, i)
				if got != slow || want != slow {
					t.Fatalf("flatObjectEnd(%q, %d) = %d, objectEnd %d, byte by byte %d", b, i, got, want, slow)
				}
			}
		}
	}
	if answered < 1000 {
		t.Errorf("the fast path answered %d times: the test exercises too little of it", answered)
	}
}

// slowObjectEnd is objectEnd's byte-by-byte scan.
func slowObjectEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
