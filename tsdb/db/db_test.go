package db

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if queryDB != nil { // shared by the query benchmarks
		queryDB.Close()
	}
	if freshDB != nil { // BenchmarkQueryFresh's
		freshDB.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func options(cfg tsdbtest.Config) Options {
	return Options{
		Now:               cfg.Now,
		IngestMaxAge:      cfg.IngestMaxAge,
		MaxSeriesPerQuery: cfg.MaxSeriesPerQuery,
		Fsync:             wal.SyncBatch,
		// Maintenance runs when tests call it, not on a timer.
		MaintenanceInterval: 1 << 40,
	}
}

func openDB(t *testing.T, dir string, opts Options) *DB {
	t.Helper()
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	tsdbtest.Run(t, tsdbtest.Harness{
		Open: func(t *testing.T, cfg tsdbtest.Config) tsdbtest.Store { return openDB(t, "", options(cfg)) },
	})
}

func TestConformanceDisk(t *testing.T) {
	t.Parallel()
	tsdbtest.Run(t, tsdbtest.Harness{
		Open: func(t *testing.T, cfg tsdbtest.Config) tsdbtest.Store { return openDB(t, t.TempDir(), options(cfg)) },
	})
}

// TestConformanceRestart reopens the store after every write: what the
// suite reads back comes from the checkpoint and the WAL.
func TestConformanceRestart(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex // subtests run in parallel
	dirs := map[tsdbtest.Store]string{}
	tsdbtest.Run(t, tsdbtest.Harness{
		Open: func(t *testing.T, cfg tsdbtest.Config) tsdbtest.Store {
			dir := t.TempDir()
			db := openDB(t, dir, options(cfg))
			mu.Lock()
			defer mu.Unlock()
			dirs[db] = dir
			return db
		},
		Reopen: func(t *testing.T, s tsdbtest.Store, cfg tsdbtest.Config) tsdbtest.Store {
			mu.Lock()
			dir := dirs[s]
			mu.Unlock()
			if err := s.(*DB).Close(); err != nil {
				t.Fatal(err)
			}
			db := openDB(t, dir, options(cfg))
			mu.Lock()
			defer mu.Unlock()
			dirs[db] = dir
			return db
		},
	})
}
