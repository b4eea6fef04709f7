package tsdbtest

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
)

// KV is an in-memory tsdb.KV for the tests of packages that keep records
// (alerting, dashboards, canary runs) and must not open a store.
type KV struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewKV returns an empty in-memory KV.
func NewKV() *KV { return &KV{m: map[string][]byte{}} }

var _ tsdb.KV = (*KV)(nil)

// Get returns a copy of key's value, or tsdb.ErrNotFound.
func (kv *KV) Get(_ context.Context, key string) ([]byte, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.m[key]
	if !ok {
		return nil, tsdb.ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

// Put sets key to a copy of value; nil deletes key.
func (kv *KV) Put(_ context.Context, key string, value []byte) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if value == nil {
		delete(kv.m, key)
		return nil
	}
	kv.m[key] = append([]byte{}, value...)
	return nil
}

// Scan calls fn for every key with prefix, in key order, outside the lock.
func (kv *KV) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	kv.mu.Lock()
	var keys []string
	vals := map[string][]byte{}
	for k, v := range kv.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
			vals[k] = append([]byte(nil), v...)
		}
	}
	kv.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k, vals[k]); err != nil {
			return err
		}
	}
	return nil
}

// TestKV is the conformance suite every tsdb.KV passes.
func TestKV(t *testing.T, kv tsdb.KV) {
	t.Helper()
	ctx := context.Background()
	if _, err := kv.Get(ctx, "a/missing"); err != tsdb.ErrNotFound {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
	}
	for _, k := range []string{"a/2", "a/1", "b/1", "a/3", "a"} {
		if err := kv.Put(ctx, k, []byte("v"+k)); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	got, err := kv.Get(ctx, "a/1")
	if err != nil || string(got) != "va/1" {
		t.Fatalf("Get(a/1) = %q, %v; want va/1", got, err)
	}
	got[0] = 'X' // the caller owns the copy
	if again, _ := kv.Get(ctx, "a/1"); string(again) != "va/1" {
		t.Fatalf("Get after modifying the returned slice = %q", again)
	}
	if err := kv.Put(ctx, "a/3", nil); err != nil {
		t.Fatalf("Put(a/3, nil): %v", err)
	}
	if err := kv.Put(ctx, "a/none", nil); err != nil {
		t.Fatalf("deleting an absent key: %v", err)
	}
	var keys []string
	err = kv.Scan(ctx, "a/", func(k string, v []byte) error {
		if string(v) != "v"+k {
			t.Errorf("Scan value of %q = %q", k, v)
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil || strings.Join(keys, ",") != "a/1,a/2" {
		t.Fatalf("Scan(a/) = %v, %v; want [a/1 a/2]", keys, err)
	}
	stop := context.Canceled
	n := 0
	if err := kv.Scan(ctx, "", func(string, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Scan stopping on the first key: %d calls, err %v", n, err)
	}
}
