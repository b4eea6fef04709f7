package db

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

// The crash test's workload: batch i writes, for each of crashSeries
// series, a gauge with value i and a counter with value i at step i, so a
// recovered store must hold value i (gauge) and rate 1 (counter) at every
// acknowledged step.
const (
	crashSeries = 50
	crashStep   = 1000 // 1 s storage step: thousands of batches in blocks
	crashT0     = 1_700_006_400_000
)

func crashOptions(fsync wal.SyncMode) Options {
	return Options{
		Step:            crashStep,
		MemoryRetention: 24 * hour,
		IngestMaxAge:    24 * hour,
		Now:             func() int64 { return crashT0 + 12*hour },
		Fsync:           fsync,
		// Checkpoint and seal all the time, so kills land in the middle.
		CheckpointInterval:  50,
		MaintenanceInterval: 20,
	}
}

func crashBatch(i int) *tsdb.Batch {
	b := &tsdb.Batch{}
	ts := crashT0 + int64(i)*crashStep
	for j := range crashSeries {
		b.Points = append(b.Points,
			tsdb.Datapoint{Tags: tags.New("name", "g", "j", strconv.Itoa(j), "atlas.dstype", "gauge"), T: ts, V: float64(i)},
			tsdb.Datapoint{Tags: tags.New("name", "c", "j", strconv.Itoa(j), "atlas.dstype", "counter"), T: ts, V: float64(i)})
	}
	return b
}

// crashLateBack is how many steps back the late workload's late writes go:
// more than a block (120 steps), so their period ended before the batch's
// opened.
const crashLateBack = 130

// crashLateBatch is crashBatch plus, for each of crashSeries series, a
// gauge written at step i with value i and, late, at step i−crashLateBack
// with that step's index plus 1000, so a recovered store must hold index
// + 1000 at every step whose late write was acknowledged.
func crashLateBatch(i int) *tsdb.Batch {
	b := crashBatch(i)
	ts := crashT0 + int64(i)*crashStep
	for j := range crashSeries {
		late := tags.New("name", "late", "j", strconv.Itoa(j), "atlas.dstype", "gauge")
		b.Points = append(b.Points,
			tsdb.Datapoint{Tags: late, T: ts, V: float64(i)},
			tsdb.Datapoint{Tags: late, T: ts - crashLateBack*crashStep, V: float64(i-crashLateBack) + 1000})
	}
	return b
}

// TestCrashChild is the child process of TestCrash; it does nothing unless
// started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("SEXTANT_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	mode, _ := wal.ParseSyncMode(os.Getenv("SEXTANT_CRASH_FSYNC"))
	db, err := Open(dir, crashOptions(mode))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	first, _ := strconv.Atoi(os.Getenv("SEXTANT_CRASH_FIRST"))
	out := bufio.NewWriter(os.Stdout)
	// The parent's kill timer starts here: the crash falls among the
	// writes, however long the process took to start and replay.
	fmt.Fprintln(out, "opened")
	out.Flush()
	batch := crashBatch
	if os.Getenv("SEXTANT_CRASH_WORKLOAD") == "late" {
		batch = crashLateBatch
	}
	for i := first; ; i++ {
		if err := db.Append(context.Background(), batch(i)); err != nil {
			fmt.Fprintln(out, "error:", err)
			out.Flush()
			os.Exit(2)
		}
		// Acknowledged: durable per the fsync mode.
		fmt.Fprintf(out, "ack %d\n", i)
		out.Flush()
	}
}

func TestCrash(t *testing.T) {
	if os.Getenv("SEXTANT_CRASH_DIR") != "" {
		t.Skip("in the child")
	}
	t.Parallel()
	for _, mode := range []wal.SyncMode{wal.SyncBatch, wal.SyncAlways, wal.SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, uint64(mode)))
			dir := t.TempDir()
			acked := -1
			// Several lives: each crash leaves a store the next one continues.
			for life := range 3 {
				delay := time.Duration(100+rng.IntN(900)) * time.Millisecond
				acked = crashOnce(t, dir, mode, "", acked+1, delay)
				t.Logf("life %d: killed after %v, %d batches acknowledged", life, delay, acked+1)
				verifyCrash(t, dir, mode, "", acked)
			}
		})
	}
}

// TestCrashLate is TestCrash with late writes in every batch (into
// periods before the one the batch opened: late blocks, loaded, switched,
// checkpointed in snapshots and replayed), in one fsync mode.
func TestCrashLate(t *testing.T) {
	if os.Getenv("SEXTANT_CRASH_DIR") != "" {
		t.Skip("in the child")
	}
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	acked := -1
	for life := range 3 {
		delay := time.Duration(300+rng.IntN(900)) * time.Millisecond
		acked = crashOnce(t, dir, wal.SyncBatch, "late", acked+1, delay)
		t.Logf("life %d: killed after %v, %d batches acknowledged", life, delay, acked+1)
		verifyCrash(t, dir, wal.SyncBatch, "late", acked)
	}
}

// crashOnce runs the child from batch first, kills it after delay and
// returns the last acknowledged batch. workload "late" writes
// crashLateBatch.
func crashOnce(t *testing.T, dir string, mode wal.SyncMode, workload string, first int, delay time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "SEXTANT_CRASH_DIR="+dir, "SEXTANT_CRASH_FSYNC="+mode.String(),
		"SEXTANT_CRASH_FIRST="+strconv.Itoa(first), "SEXTANT_CRASH_WORKLOAD="+workload)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks := make(chan int, 1024)
	opened := make(chan struct{})
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if line == "opened" {
				close(opened)
				continue
			}
			if n, ok := strings.CutPrefix(line, "ack "); ok {
				i, _ := strconv.Atoi(n)
				acks <- i
			} else if strings.HasPrefix(line, "error:") || strings.HasPrefix(line, "open:") {
				t.Errorf("child: %s", line)
			}
		}
	}()
	last := first - 1
	// The delay counts from the store's open, not from exec: a slow start
	// (the race detector, a loaded machine, a long replay) must not leave
	// the child killed before it wrote anything.
	select {
	case <-opened:
	case <-acks: // closed: the child exited without opening (its error is reported)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child did not open the store within a minute")
	}
	timer := time.After(delay)
loop:
	for {
		select {
		case i, ok := <-acks:
			if !ok {
				break loop
			}
			last = i
		case <-timer:
			break loop
		}
	}
	// SIGKILL: no deferred code, no flush, no Close.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// Acks read before the kill are all the ones we may rely on; the
	// child may have acknowledged more, which may or may not survive.
	for range acks {
	}
	if last < first {
		t.Fatalf("child acknowledged nothing in %v", delay)
	}
	return last
}

// verifyCrash reopens the store and checks every acknowledged datapoint.
func verifyCrash(t *testing.T, dir string, mode wal.SyncMode, workload string, acked int) {
	t.Helper()
	opts := crashOptions(mode)
	opts.MaintenanceInterval = 1 << 40
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	end := crashT0 + int64(acked+1)*crashStep
	for _, name := range []string{"g", "c"} {
		set, err := db.Fetch(context.Background(), tsdb.FetchRequest{
			Query: tags.Eq("name", name), Start: crashT0, End: end, Step: crashStep})
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Series) != crashSeries {
			t.Fatalf("%s: %d series after crash, want %d", name, len(set.Series), crashSeries)
		}
		for _, s := range set.Series {
			for i, v := range s.Values {
				want := float64(i)
				if name == "c" {
					want = 1 // counter: one per second, the first step has no rate
					if i == 0 {
						continue
					}
				}
				if v != want {
					t.Fatalf("%v step %d (of %d acknowledged) = %v, want %v", s.Tags, i, acked+1, v, want)
				}
			}
		}
	}
	if workload != "late" {
		return
	}
	set, err := db.Fetch(context.Background(), tsdb.FetchRequest{
		Query: tags.Eq("name", "late"), Start: crashT0, End: end, Step: crashStep})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Series) != crashSeries {
		t.Fatalf("late: %d series after crash, want %d", len(set.Series), crashSeries)
	}
	for _, s := range set.Series {
		for i, v := range s.Values {
			// The late write of step i came with batch i+crashLateBack:
			// there if acknowledged, maybe there if not.
			want := float64(i) + 1000
			if v != want && (i+crashLateBack <= acked || v != float64(i)) {
				t.Fatalf("%v step %d (of %d acknowledged) = %v, want %v", s.Tags, i, acked+1, v, want)
			}
		}
	}
}
