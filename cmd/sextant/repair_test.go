package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestDamagedWALRefusesThenRepairs is issue #17 item 5 against the real
// binary: a byte changed in the middle of the WAL, with acknowledged
// records after it, makes `sextant serve` refuse to start with the file
// and byte offset named (it used to cut the file there and start);
// `sextant repair` quarantines the damage, and the next start has every
// other record.
func TestDamagedWALRefusesThenRepairs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	now := time.Now().UnixMilli() / 1000 * 1000
	opts := db.Options{Step: 1000, MemoryRetention: 3600_000, CheckpointInterval: 1 << 40}
	store, err := db.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		b := &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: tags.New("name", "walrec", "i", strconv.Itoa(i), "atlas.dstype", "gauge"),
			T: now - int64(n-i)*1000, V: float64(i)}}}
		if err := store.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	// Copy the WAL as it was before Close checkpoints it, as after a crash.
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	data, _ := os.ReadFile(segs[len(segs)-1])
	store.Close()
	os.RemoveAll(filepath.Join(dir, "pebble"))
	mid := len(data) / 2
	data[mid] ^= 0xff
	os.WriteFile(segs[len(segs)-1], data, 0o644)

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--otlp-http-listen", "",
		"--otlp-grpc-listen", "", "--zipkin-listen", "", "--spectatord-listen", "", "--step", "1s", "--memory-retention", "1h")
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve started on a damaged WAL")
	}
	out := stderr.String()
	if err == nil || strings.Contains(out, "panic") || !strings.Contains(out, filepath.Base(segs[len(segs)-1])) ||
		!strings.Contains(out, "byte offset") {
		t.Fatalf("serve on a damaged WAL: %v\n%s", err, out)
	}

	rep, err := exec.Command(bin, "repair", "--data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(rep), "quarantined") {
		t.Fatalf("sextant repair: %v\n%s", err, rep)
	}
	b := runBinary(t, bin, nil, "--data-dir", dir, "--memory-retention", "1h")
	b.cmd.Process.Signal(os.Interrupt)
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("serve after repair: %v", err)
	}
	store, err = db.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	set, err := store.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "walrec"),
		Start: now - n*1000, End: now, Step: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Series) != n-1 {
		t.Fatalf("%d series after repair, want %d: only the damaged record may go", len(set.Series), n-1)
	}
}
