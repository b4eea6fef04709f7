package kafkalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// newStateCluster starts a kfake cluster of three brokers (no topics: the
// state opens its own).
func newStateCluster(t testing.TB) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func openState(t testing.TB, brokers []string, mod func(*StateOptions)) *State {
	t.Helper()
	o := StateOptions{Brokers: brokers, Prefix: "st", WriteTimeout: 3 * time.Second, ReadTimeout: time.Second}
	if mod != nil {
		mod(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenState(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func scanAll(t *testing.T, kv tsdb.KV, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := kv.Scan(context.Background(), prefix, func(k string, v []byte) error {
		out[k] = string(v)
		return nil
	}); err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return out
}

// TestStateConformance: the replicated store passes the suite every
// tsdb.KV passes.
func TestStateConformance(t *testing.T) {
	t.Parallel()
	_, brokers := newStateCluster(t)
	tsdbtest.TestKV(t, openState(t, brokers, nil))
}

// TestStateShared: two nodes' states on one topic are one store: a write
// on one is read on the other at once (every read catches up with the
// topic's end as of the call), deletes and overwrites too; watchers see
// the keys of both nodes' writes; a node opened later reads everything
// back from the topic, tombstones included.
func TestStateShared(t *testing.T) {
	t.Parallel()
	_, brokers := newStateCluster(t)
	a := openState(t, brokers, nil)
	b := openState(t, brokers, nil)
	var mu sync.Mutex
	var seen []string
	b.Watch(func(key string) { mu.Lock(); seen = append(seen, key); mu.Unlock() })
	ctx := context.Background()

	for i := range 20 {
		key := fmt.Sprintf("ui/dashboards/d%02d", i)
		if err := a.Put(ctx, key, []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("Put(%s) on a: %v", key, err)
		}
		// No waiting: the read on b sees the acknowledged write.
		if v, err := b.Get(ctx, key); err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("Get(%s) on b right after the Put on a = %q, %v", key, v, err)
		}
	}
	if err := b.Put(ctx, "ui/dashboards/d00", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "ui/dashboards/d00"); !errors.Is(err, tsdb.ErrNotFound) {
		t.Errorf("Get on a of a key deleted on b: %v, want ErrNotFound", err)
	}
	if err := b.Put(ctx, "ui/dashboards/d01", []byte("from b")); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "alerting/silences/s1", []byte{}); err != nil { // an empty value is not a delete
		t.Fatal(err)
	}
	want := map[string]string{"alerting/silences/s1": ""}
	for i := 1; i < 20; i++ {
		want[fmt.Sprintf("ui/dashboards/d%02d", i)] = fmt.Sprint(i)
	}
	want["ui/dashboards/d01"] = "from b"
	for name, kv := range map[string]*State{"a": a, "b": b} {
		if got := scanAll(t, kv, ""); !maps.Equal(got, want) {
			t.Errorf("Scan on %s = %v, want %v", name, got, want)
		}
	}
	if got := scanAll(t, a, "ui/dashboards/d1"); len(got) != 10 {
		t.Errorf("Scan(ui/dashboards/d1) = %d keys, want 10", len(got))
	}
	mu.Lock()
	if len(seen) != 23 || seen[0] != "ui/dashboards/d00" || seen[20] != "ui/dashboards/d00" || seen[22] != "alerting/silences/s1" {
		t.Errorf("b's watcher saw %d keys: %v", len(seen), seen)
	}
	mu.Unlock()

	c := openState(t, brokers, nil)
	if got := scanAll(t, c, ""); !maps.Equal(got, want) {
		t.Errorf("a state opened later holds %v, want %v", got, want)
	}
	if c.Len() != len(want) {
		t.Errorf("Len = %d, want %d", c.Len(), len(want))
	}
}

// TestStateConcurrent: nodes writing at once, the same keys included, end
// with the same copy, each write read back by its writer.
func TestStateConcurrent(t *testing.T) {
	t.Parallel()
	_, brokers := newStateCluster(t)
	nodes := []*State{openState(t, brokers, nil), openState(t, brokers, nil), openState(t, brokers, nil)}
	ctx := context.Background()
	var wg sync.WaitGroup
	for n, s := range nodes {
		wg.Go(func() {
			for i := range 30 {
				own := fmt.Sprintf("k/%d/%d", n, i)
				if err := s.Put(ctx, own, []byte(own)); err != nil {
					t.Errorf("Put(%s): %v", own, err)
					return
				}
				if v, err := s.Get(ctx, own); err != nil || string(v) != own {
					t.Errorf("read your write %s = %q, %v", own, v, err)
				}
				if err := s.Put(ctx, "shared", []byte(own)); err != nil {
					t.Errorf("Put(shared): %v", err)
				}
			}
		})
	}
	wg.Wait()
	first := scanAll(t, nodes[0], "")
	if len(first) != 91 {
		t.Errorf("%d keys, want 91", len(first))
	}
	for i, s := range nodes[1:] {
		if got := scanAll(t, s, ""); !maps.Equal(got, first) {
			t.Errorf("node %d's copy differs from node 0's: shared %q vs %q", i+1, got["shared"], first["shared"])
		}
	}
}

// TestStateLimits: a record Kafka would refuse is a precise error that
// wraps tsdb.ErrValueTooLarge, and nothing is written.
func TestStateLimits(t *testing.T) {
	t.Parallel()
	_, brokers := newStateCluster(t)
	s := openState(t, brokers, nil)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), MaxStateRecordBytes)
	err := s.Put(ctx, "ui/dashboards/big", big)
	var te *ValueTooLargeError
	if !errors.As(err, &te) || !errors.Is(err, tsdb.ErrValueTooLarge) || te.Max != MaxStateRecordBytes ||
		!strings.Contains(err.Error(), "ui/dashboards/big") || !strings.Contains(err.Error(), fmt.Sprint(MaxStateRecordBytes)) {
		t.Errorf("Put of %d bytes = %v, want a ValueTooLargeError naming the key and the limit", len(big), err)
	}
	if err := s.Put(ctx, strings.Repeat("k", MaxStateKeyBytes+1), []byte("v")); !errors.Is(err, tsdb.ErrValueTooLarge) {
		t.Errorf("Put with a key over %d bytes = %v", MaxStateKeyBytes, err)
	}
	if err := s.Put(ctx, "", []byte("v")); err == nil {
		t.Error("Put with an empty key succeeded")
	}
	// The largest record that fits goes through.
	fits := big[:MaxStateRecordBytes-len("ui/dashboards/big")-1]
	if err := s.Put(ctx, "ui/dashboards/big", fits); err != nil {
		t.Errorf("Put of the largest value: %v", err)
	}
	if got, err := s.Get(ctx, "ui/dashboards/big"); err != nil || len(got) != len(fits) {
		t.Errorf("Get of the largest value: %d bytes, %v", len(got), err)
	}
}

// TestStateKafkaDown: with every broker gone, a Put fails within the write
// timeout with an error wrapping tsdb.ErrUnavailable (never a write to the
// local copy alone), and reads answer from the copy.
func TestStateKafkaDown(t *testing.T) {
	t.Parallel()
	kc, brokers := newStateCluster(t)
	s := openState(t, brokers, func(o *StateOptions) { o.WriteTimeout = time.Second; o.ReadTimeout = 500 * time.Millisecond })
	ctx := context.Background()
	if err := s.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	kc.Close()
	start := time.Now()
	err := s.Put(ctx, "b", []byte("2"))
	if !errors.Is(err, tsdb.ErrUnavailable) {
		t.Errorf("Put with Kafka down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Put with Kafka down took %v, write timeout 1s", d)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, tsdb.ErrNotFound) {
		t.Errorf("Get of the failed write = %v, want ErrNotFound (no local-only write)", err)
	}
	if v, err := s.Get(ctx, "a"); err != nil || string(v) != "1" {
		t.Errorf("Get with Kafka down = %q, %v; want the copy's value", v, err)
	}
	// After a failed listing, reads answer from the copy at once.
	start = time.Now()
	for range 10 {
		if got := scanAll(t, s, ""); len(got) != 1 {
			t.Errorf("Scan with Kafka down = %v", got)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("10 reads with Kafka down took %v: each should answer from the copy", d)
	}
}

func TestDecodeState(t *testing.T) {
	t.Parallel()
	f := func(in []byte, want string, ok bool) {
		t.Helper()
		got, err := decodeState(in)
		if (err == nil) != ok || string(got) != want {
			t.Errorf("decodeState(%q) = %q, %v; want %q ok=%v", in, got, err, want, ok)
		}
	}
	f([]byte{stateVersion, 'a', 'b'}, "ab", true)
	f([]byte{stateVersion}, "", true)
	f([]byte{}, "", false)
	f([]byte{2, 'a'}, "", false)
}

// FuzzDecodeState: no input makes the state record decoder panic, and a
// value round-trips.
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte{stateVersion, '{', '}'})
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{stateVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeState(b)
		if err != nil {
			return
		}
		if again, err := decodeState(append([]byte{stateVersion}, v...)); err != nil || !bytes.Equal(again, v) {
			t.Fatalf("round trip of %q = %q, %v", v, again, err)
		}
	})
}
