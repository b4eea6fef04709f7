package db

import (
	"context"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func TestKVMemory(t *testing.T) {
	t.Parallel()
	tsdbtest.TestKV(t, openDB(t, "", Options{}).KV())
}

func TestKVDisk(t *testing.T) {
	t.Parallel()
	tsdbtest.TestKV(t, openDB(t, t.TempDir(), Options{}).KV())
}

// A record put before Close is there after reopening.
func TestKVReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.KV().Put(ctx, "ui/dashboards/x", []byte(`{"title":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := openDB(t, dir, Options{}).KV().Get(ctx, "ui/dashboards/x")
	if err != nil || string(got) != `{"title":"x"}` {
		t.Fatalf("Get after reopen = %q, %v", got, err)
	}
}
