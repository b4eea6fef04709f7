package cluster

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	in := record{Version: recordVersion, ID: "store-1", Addr: "10.0.0.1:7101", Roles: []string{RoleStore, RoleQuery}, Time: 1764612345123,
		Partitions: []PartitionState{{Partition: 3, CaughtUp: true, LagRecords: 2, LagSeconds: 0.5}, {Partition: 7, LagSeconds: -1}}}
	out, err := decodeRecord("store-1", encodeRecord(in))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	t.Parallel()
	f := func(key, in string) {
		t.Helper()
		if _, err := decodeRecord(key, []byte(in)); !errors.Is(err, errRecord) {
			t.Errorf("decodeRecord(%q, %q) = %v, want errRecord", key, in, err)
		}
	}
	f("a", `not json`)
	f("a", `{"v":2,"id":"a"}`)
	f("a", `{"v":1,"id":""}`)
	f("a", `{"v":1,"id":"b"}`)
	f("a", `{"v":1,"id":"a","partitions":[{"partition":-1}]}`)
	f("a", `{"v":1,"id":"a","partitions":[{"partition":70000}]}`)
	f("a", `{"v":1,"id":"a","roles":["a","b","c","d","e","f","g","h","i"]}`)
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add("store-1", []byte(`{"v":1,"id":"store-1","addr":"h:1","roles":["store"],"time":5,"partitions":[{"partition":1,"caughtUp":true,"lagRecords":0,"lagSeconds":0}]}`))
	f.Add("q", []byte(`{"v":1,"id":"q","roles":["query"],"time":1}`))
	f.Add("x", []byte(`{"v":1}`))
	f.Add("x", []byte(`[]`))
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		r, err := decodeRecord(key, b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same record.
		again, err := decodeRecord(key, encodeRecord(r))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !cmp.Equal(r, again, cmpopts.EquateEmpty()) {
			t.Fatalf("re-decode = %+v, want %+v", again, r)
		}
		tb := table{key: r}
		v := tb.view(key, r.time(), 4, 2, 1)
		_ = v.Owners(0)
	})
}

func TestNodeIDKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := func(flag, want string) {
		t.Helper()
		got, err := NodeID(dir, flag, "host-a")
		if err != nil || got != want {
			t.Errorf("NodeID(%q) = %q, %v, want %q", flag, got, err, want)
		}
	}
	f("", "host-a")         // first start: the hostname, kept
	f("", "host-a")         // restart
	f("store-9", "store-9") // an explicit id replaces it
	f("", "store-9")        // and is kept
	if _, err := NodeID(t.TempDir(), "", ""); err == nil {
		t.Errorf("NodeID with no flag and no hostname succeeded")
	}
}
