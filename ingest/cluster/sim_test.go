package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// memTopic is an in-memory members topic with fixed data-topic end
// offsets, shared by the members of a simulated cluster.
type memTopic struct {
	mu     sync.Mutex
	msgs   []message
	notify chan struct{} // closed when a message is appended
	end    map[topicPartition]int64
	down   bool // sends fail, as when Kafka is unreachable
}

func newMemTopic(topics []string, partitions int, end int64) *memTopic {
	t := &memTopic{notify: make(chan struct{}), end: map[topicPartition]int64{}}
	for _, topic := range topics {
		for p := range partitions {
			t.end[topicPartition{topic, p}] = end
		}
	}
	return t
}

// reader is one member's cursor on the topic.
func (t *memTopic) reader() *memReader { return &memReader{t: t} }

type memReader struct {
	t    *memTopic
	next int
}

func (r *memReader) send(_ context.Context, key string, value []byte) error {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return errors.New("kafka unreachable")
	}
	t.msgs = append(t.msgs, message{offset: int64(len(t.msgs)), key: key, value: value})
	close(t.notify)
	t.notify = make(chan struct{})
	return nil
}

func (r *memReader) poll(ctx context.Context) []message {
	for {
		r.t.mu.Lock()
		msgs, notify := r.t.msgs[r.next:], r.t.notify
		r.t.mu.Unlock()
		if len(msgs) > 0 {
			r.next += len(msgs)
			return slices.Clone(msgs)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-notify:
		}
	}
}

func (r *memReader) ends(context.Context) (map[topicPartition]int64, error) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	out := map[topicPartition]int64{}
	for k, v := range r.t.end {
		out[k] = v
	}
	return out, nil
}

// simConsumer stands in for the store consumer: it follows the
// membership's assignment and reaches the log's end catchUp after a
// partition is assigned to it (a replay), reporting no offset before.
type simConsumer struct {
	topics  []string
	end     int64
	catchUp time.Duration

	mu    sync.Mutex
	since map[int]time.Time // assigned partition -> when
}

func (c *simConsumer) run(ctx context.Context, m *Membership) {
	for {
		parts, ch := m.Assignment()
		now := time.Now()
		c.mu.Lock()
		for p := range c.since {
			if !slices.Contains(parts, p) {
				delete(c.since, p)
			}
		}
		for _, p := range parts {
			if _, ok := c.since[p]; !ok {
				c.since[p] = now
			}
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

func (c *simConsumer) progress() []Applied {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Applied
	for p, since := range c.since {
		if time.Since(since) < c.catchUp {
			continue
		}
		for _, topic := range c.topics {
			out = append(out, Applied{Topic: topic, Partition: p, Offset: c.end, Time: since})
		}
	}
	return out
}

// simCluster runs store members on one memTopic inside a synctest bubble.
type simCluster struct {
	t       *testing.T
	topic   *memTopic
	members map[string]*simMember
}

type simMember struct {
	m      *Membership
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	simPartitions = 16
	simEnd        = 100
	simCatchUp    = 3 * time.Second
)

var simTopics = []string{"sextant-metrics", "sextant-spans"}

func newSimCluster(t *testing.T) *simCluster {
	return &simCluster{t: t, topic: newMemTopic(simTopics, simPartitions, simEnd), members: map[string]*simMember{}}
}

// start starts member id (store role), reading the topic from its start.
func (s *simCluster) start(id string) *Membership {
	s.t.Helper()
	c := &simConsumer{topics: simTopics, end: simEnd, catchUp: simCatchUp, since: map[int]time.Time{}}
	m, err := New(Options{
		Brokers: []string{"sim"}, Topic: "sextant-members", DataTopics: simTopics,
		NodeID: id, Addr: id + ":7101", Roles: []string{RoleStore},
		Partitions: simPartitions, Replication: 2,
		Progress: c.progress,
		Interval: time.Second, Timeout: 5 * time.Second,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sm := &simMember{m: m, cancel: cancel}
	r := s.topic.reader()
	s.topic.mu.Lock()
	end := int64(len(s.topic.msgs))
	s.topic.mu.Unlock()
	sm.wg.Go(func() { m.run(ctx, r, end) })
	sm.wg.Go(func() { c.run(ctx, m) })
	s.members[id] = sm
	return m
}

// stop stops member id as kill -9 would: no more heartbeats.
func (s *simCluster) stop(id string) {
	sm := s.members[id]
	sm.cancel()
	sm.wg.Wait()
	delete(s.members, id)
}

func (s *simCluster) stopAll() {
	for id := range s.members {
		s.stop(id)
	}
}

// owners returns, per partition, the ids serving it as member id sees it.
func owners(m *Membership) [][]string {
	out := make([][]string, m.Partitions())
	for p := range out {
		for _, n := range m.Owners(p) {
			out[p] = append(out[p], n.ID)
		}
	}
	return out
}

// assigned returns, per partition, the members whose assignment has it.
func (s *simCluster) assigned() [][]string {
	out := make([][]string, simPartitions)
	var ids []string
	for id := range s.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		parts, _ := s.members[id].m.Assignment()
		for _, p := range parts {
			out[p] = append(out[p], id)
		}
	}
	return out
}

// checkSteady checks every member sees every partition served by exactly
// the rendezvous owners among live, and consumes exactly those.
func (s *simCluster) checkSteady(live ...string) {
	s.t.Helper()
	want := make([][]string, simPartitions)
	for p := range want {
		want[p] = Assign(live, p, 2)
	}
	for id, sm := range s.members {
		if got := owners(sm.m); !slices.EqualFunc(got, want, slices.Equal) {
			s.t.Errorf("%s sees owners %v, want %v", id, got, want)
		}
		if err := sm.m.Ready(); err != nil {
			s.t.Errorf("%s not ready: %v", id, err)
		}
	}
	got := s.assigned()
	for p := range want {
		w := slices.Clone(want[p])
		slices.Sort(w)
		if !slices.Equal(got[p], w) {
			s.t.Errorf("partition %d consumed by %v, want %v", p, got[p], w)
		}
	}
}

func (s *simCluster) String() string { return fmt.Sprint(s.assigned()) }

// setDown makes sends fail (Kafka unreachable) or succeed again.
func (t *memTopic) setDown(down bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.down = down
}
