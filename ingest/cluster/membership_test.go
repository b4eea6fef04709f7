package cluster

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestMembershipSim runs the membership protocol on an in-memory members
// topic under a fake clock: three members converge on R owners per
// partition, identical on every member; a fourth takes its quarter only
// once caught up (make before break); a member that stops heartbeating is
// replaced within a bound; a restarted member gets its partitions back.
func TestMembershipSim(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSimCluster(t)
		defer s.stopAll()
		for _, id := range []string{"store-1", "store-2", "store-3"} {
			s.start(id)
		}
		// Heartbeats every 1s; a replay takes 3s; a few rounds settle it.
		time.Sleep(6 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		s.checkSteady("store-1", "store-2", "store-3")

		// A fourth member joins.
		before := s.assigned()
		four := s.start("store-4")
		time.Sleep(1500 * time.Millisecond) // synctest: advances the bubble's fake clock; it heartbeats, is assigned, replays
		synctest.Wait()
		gained, _ := four.Assignment()
		if len(gained) < 5 || len(gained) > 12 {
			t.Fatalf("store-4 assigned %v, want about a quarter of %d partition-replicas", gained, 2*simPartitions)
		}
		if err := four.Ready(); err == nil {
			t.Errorf("store-4 ready while replaying")
		}
		// While it replays, the previous owners keep consuming and
		// serving its partitions, and nobody routes queries to it.
		during := s.assigned()
		for _, p := range gained {
			for _, id := range before[p] {
				if !slices.Contains(during[p], id) {
					t.Errorf("partition %d: %s dropped it before store-4 caught up (%v -> %v)", p, id, before[p], during[p])
				}
			}
			for _, n := range s.members["store-1"].m.Owners(p) {
				if n.ID == "store-4" {
					t.Errorf("partition %d: store-4 serves it before it caught up", p)
				}
			}
			if got := s.members["store-1"].m.Owners(p); len(got) < 2 {
				t.Errorf("partition %d: %d serving owners during the hand-off, want at least 2", p, len(got))
			}
		}
		time.Sleep(6 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		s.checkSteady("store-1", "store-2", "store-3", "store-4")
		after, _ := four.Assignment()
		if !slices.Equal(after, gained) {
			t.Errorf("store-4 consumes %v after the hand-off, want %v", after, gained)
		}

		// store-2 stops heartbeating (killed). Its partitions must be served
		// by two nodes again within Timeout (5s) + a heartbeat + the 3s
		// replay + a heartbeat to report it: 10s.
		lost, _ := s.members["store-2"].m.Assignment()
		s.stop("store-2")
		killed := time.Now()
		for {
			time.Sleep(100 * time.Millisecond) // synctest: advances the bubble's fake clock
			synctest.Wait()
			full := true
			for p := range simPartitions {
				got := owners(s.members["store-1"].m)[p]
				if len(got) < 2 || slices.Contains(got, "store-2") {
					full = false
				}
			}
			if full {
				break
			}
			if time.Since(killed) > 10*time.Second {
				t.Fatalf("10s after store-2 died, owners are %v", owners(s.members["store-1"].m))
			}
		}
		if took := time.Since(killed); took < 5*time.Second {
			t.Errorf("store-2's partitions moved after %s, before its 5s timeout", took)
		}
		time.Sleep(2 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		s.checkSteady("store-1", "store-3", "store-4")

		// store-2 restarts with the same id: its partitions come back.
		s.start("store-2")
		time.Sleep(8 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		s.checkSteady("store-1", "store-2", "store-3", "store-4")
		back, _ := s.members["store-2"].m.Assignment()
		if !slices.Equal(back, lost) {
			t.Errorf("restarted store-2 consumes %v, want its old %v", back, lost)
		}
	})
}

// TestAssignmentChan: the channel form of the assignment delivers the
// latest whole set, also to a reader that subscribes late, and closes when
// Run returns.
func TestAssignmentChan(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSimCluster(t)
		m := s.start("store-1")
		early := m.AssignmentChan()
		time.Sleep(1500 * time.Millisecond) // synctest: advances the bubble's fake clock; heartbeats assign every partition
		synctest.Wait()
		late := m.AssignmentChan()
		// Values are sent before synctest.Wait returns: receive without
		// waiting, so that a missing one fails rather than spins the
		// bubble's clock.
		recv := func(name string, ch <-chan []int) []int {
			t.Helper()
			select {
			case got := <-ch:
				return got
			default:
				t.Fatalf("%s subscriber: no assignment sent", name)
				return nil
			}
		}
		for name, ch := range map[string]<-chan []int{"early": early, "late": late} {
			if got := recv(name, ch); len(got) != simPartitions {
				t.Errorf("%s subscriber got %v, want all %d partitions (one store node)", name, got, simPartitions)
			}
		}
		s.start("store-2")
		s.start("store-3")
		time.Sleep(6 * time.Second) // synctest: advances the bubble's fake clock; they catch up, store-1 hands off
		synctest.Wait()
		want, _ := m.Assignment()
		if got := recv("early", early); !slices.Equal(got, want) || len(got) == simPartitions {
			t.Errorf("after two more nodes joined, the channel holds %v, want the latest set %v", got, want)
		}
		s.stop("store-1")
		select {
		case _, ok := <-early:
			if ok {
				t.Errorf("a value after Run returned")
			}
		default:
			t.Errorf("channel open after Run returned")
		}
		s.stopAll()
	})
}

// TestMembershipKafkaOutage: when no heartbeat gets through for longer than
// the timeout (Kafka down for everyone), no member is declared dead and no
// partition moves, during the outage or after it.
func TestMembershipKafkaOutage(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSimCluster(t)
		defer s.stopAll()
		for _, id := range []string{"store-1", "store-2", "store-3"} {
			s.start(id)
		}
		time.Sleep(6 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		s.checkSteady("store-1", "store-2", "store-3")
		before := s.assigned()
		var changed []<-chan struct{}
		for _, id := range []string{"store-1", "store-2", "store-3"} {
			_, ch := s.members[id].m.Assignment()
			changed = append(changed, ch)
		}

		s.topic.setDown(true)
		time.Sleep(20 * time.Second) // synctest: advances the bubble's fake clock; twice the timeout
		synctest.Wait()
		s.checkSteady("store-1", "store-2", "store-3")
		s.topic.setDown(false)
		time.Sleep(5 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		s.checkSteady("store-1", "store-2", "store-3")
		for i, ch := range changed {
			select {
			case <-ch:
				t.Errorf("store-%d's assignment changed across the outage (%v -> %v)", i+1, before, s.assigned())
			default:
			}
		}
	})
}

// TestServing: a node serves a partition once a heartbeat of its own said
// it is caught up on it. Its heartbeat from before a restart, read back
// from the members topic, does not count (a query node may still go by
// it; the node must turn such reads away while it replays), nor does its
// first heartbeat after the restart while it replays.
func TestServing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSimCluster(t)
		defer s.stopAll()
		for _, id := range []string{"store-1", "store-2", "store-3"} {
			s.start(id)
		}
		time.Sleep(6 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		s.checkSteady("store-1", "store-2", "store-3")
		mine, _ := s.members["store-2"].m.Assignment()
		for _, p := range mine {
			if !s.members["store-2"].m.Serving(p) {
				t.Errorf("store-2 does not serve its partition %d once caught up", p)
			}
		}
		for p := range simPartitions {
			if !slices.Contains(mine, p) && s.members["store-2"].m.Serving(p) {
				t.Errorf("store-2 serves partition %d, which it never consumed", p)
			}
		}

		// Killed and restarted within the timeout: the replay takes 3s.
		s.stop("store-2")
		m := s.start("store-2")
		time.Sleep(time.Second) // synctest: advances the bubble's fake clock; it heartbeats, replays
		synctest.Wait()
		for _, p := range mine {
			if m.Serving(p) {
				t.Errorf("restarted store-2 serves partition %d while it replays", p)
			}
		}
		time.Sleep(5 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		for _, p := range mine {
			if !m.Serving(p) {
				t.Errorf("restarted store-2 does not serve partition %d once caught up", p)
			}
		}
	})
}

// TestServingIgnoresOldHeartbeat: before a node's first heartbeat, its
// previous life's heartbeat in the table (caught up everywhere) does not
// make it serve.
func TestServingIgnoresOldHeartbeat(t *testing.T) {
	t.Parallel()
	m, err := New(Options{Brokers: []string{"k"}, Topic: "m", NodeID: "store-1", Roles: []string{RoleStore}, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	old := record{ID: "store-1", Addr: "a:1", Roles: []string{RoleStore}, Time: time.Now().UnixMilli(),
		Partitions: []PartitionState{{Partition: 0, CaughtUp: true}, {Partition: 1, CaughtUp: true}}}
	m.applyRecord("store-1", encodeRecord(old))
	for p := range 4 {
		if m.Serving(p) {
			t.Errorf("Serving(%d) before the node's own heartbeat", p)
		}
	}
}
