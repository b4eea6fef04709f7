package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/lib"
)

// Options configure a Membership.
type Options struct {
	// Brokers are the Kafka bootstrap brokers (--kafka-brokers).
	Brokers []string
	// Topic is the compacted members topic, <prefix>-members; created on
	// start when missing.
	Topic string
	// DataTopics are the topics whose partitions are assigned (the
	// metrics and spans topics); lag is measured against their end
	// offsets. A partition is caught up when it is in every one of them.
	DataTopics []string

	// NodeID names this node (--node-id, see NodeID); Addr is where other
	// nodes reach it (--advertise-addr); Roles its roles (RoleStore, ...).
	NodeID, Addr string
	Roles        []string

	// Partitions is the number of partitions of each data topic; 0: Run
	// reads it from Kafka (the first data topic), waiting for the topic
	// to exist, so that every node agrees with the log.
	Partitions int
	// Replication is the number of store nodes that own each partition
	// (--replication-factor, default 2).
	Replication int

	// Progress reports the local store consumer's position in each
	// partition it consumes; nil on a node without the store role (or
	// before a consumer runs: the node then serves nothing). It must be
	// cheap and safe for concurrent use.
	Progress func() []Applied

	// Interval is the heartbeat period (default 1s); Timeout how long
	// after its last heartbeat a member counts as dead (default 10s).
	Interval, Timeout time.Duration
	// ServeLag is the lag under which a store node starts serving a
	// partition (default 3s); it stops serving it when its lag exceeds
	// MaxLag (default 15s), the lag under which it is ready (Ready). A
	// hand-off completes when the new owners serve.
	ServeLag, MaxLag time.Duration

	// Now is the clock (default time.Now).
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
}

func (o Options) withDefaults() Options {
	if o.Replication <= 0 {
		o.Replication = 2
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 15 * time.Second
	}
	if o.ServeLag <= 0 {
		o.ServeLag = min(3*time.Second, o.MaxLag)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{Logger: o.Logger})
	}
	return o
}

// Validate reports the first setting that cannot work, naming it.
func (o Options) Validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("cluster: Brokers: none given"))
	}
	if o.Topic == "" {
		errs = append(errs, errors.New("cluster: Topic: empty"))
	}
	if o.NodeID == "" || len(o.NodeID) > maxIDLen {
		errs = append(errs, fmt.Errorf("cluster: NodeID: %q must have 1 to %d bytes", o.NodeID, maxIDLen))
	}
	if len(o.Addr) > maxIDLen {
		errs = append(errs, fmt.Errorf("cluster: Addr: longer than %d bytes", maxIDLen))
	}
	if o.Partitions < 0 || o.Partitions > maxPartitions {
		errs = append(errs, fmt.Errorf("cluster: Partitions: %d is not in 0..%d", o.Partitions, maxPartitions))
	}
	if o.Partitions == 0 && len(o.DataTopics) == 0 {
		errs = append(errs, errors.New("cluster: Partitions: 0 (read from Kafka) needs DataTopics"))
	}
	for _, r := range o.Roles {
		if r != RoleIngest && r != RoleStore && r != RoleQuery {
			errs = append(errs, fmt.Errorf("cluster: Roles: unknown role %q", r))
		}
	}
	if o.ServeLag > 0 && o.MaxLag > 0 && o.ServeLag > o.MaxLag {
		errs = append(errs, fmt.Errorf("cluster: ServeLag: %s exceeds MaxLag %s", o.ServeLag, o.MaxLag))
	}
	if o.Timeout > 0 && o.Interval > 0 && o.Timeout <= o.Interval {
		errs = append(errs, fmt.Errorf("cluster: Timeout: %s must exceed Interval %s", o.Timeout, o.Interval))
	}
	return errors.Join(errs...)
}

// Membership is this node's member of the cluster: it heartbeats, reads the
// members topic and computes the assignment. It implements Owners. Safe for
// concurrent use.
type Membership struct {
	opts Options
	lag  *lagTracker // used by the heartbeat goroutine only

	heartbeatErrors *lib.Counter
	// membersLive, membersDead, unserved and consumed are gauges of the
	// view: members by liveness, partitions no live node serves, and
	// partitions this node consumes.
	membersLive, membersDead, unserved, consumed *lib.Gauge

	mu struct {
		sync.Mutex
		table table
		view  *view
		// partitions is Options.Partitions, or what Run read from Kafka.
		partitions int
		// addr is Options.Addr, or what SetAddr set.
		addr string
		// synced: the members topic was read up to its end as of start,
		// so the view is complete; beat: a heartbeat was sent.
		synced, beat bool
		// ready latches once a store node caught up (see Ready).
		ready bool
		// lostAt is when heartbeats started failing (zero while they
		// succeed); until graceUntil after they succeed again, liveness
		// is judged as of lostAt, so that an outage of Kafka, which
		// silences every member at once, moves no partition.
		lostAt, graceUntil time.Time
		// assigned is the node's assignment; assignCh is closed when it
		// changes.
		assigned []int
		assignCh chan struct{}
		// subs are the channels of AssignmentChan; announced says the
		// first assignment (after a heartbeat) was sent to them; closed
		// that Run returned and closed them.
		subs              []chan []int
		announced, closed bool
	}
}

// New returns a membership; Run joins the cluster.
func New(opts Options) (*Membership, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	m := &Membership{opts: opts}
	m.lag = newLagTracker(opts.DataTopics, opts.ServeLag, opts.MaxLag)
	reg := opts.Registry
	m.heartbeatErrors = reg.Counter("sextant.cluster.heartbeatErrors")
	m.membersLive = reg.Gauge("sextant.cluster.members", "state", "live")
	m.membersDead = reg.Gauge("sextant.cluster.members", "state", "dead")
	m.unserved = reg.Gauge("sextant.cluster.unservedPartitions")
	m.consumed = reg.Gauge("sextant.cluster.assignedPartitions")
	m.mu.table = table{}
	m.setPartitionsLocked(opts.Partitions)
	m.mu.addr = opts.Addr
	m.mu.assignCh = make(chan struct{})
	return m, nil
}

// SetAddr sets the address this node advertises from its next heartbeat
// on, for a node that knows it only once its listener is bound.
func (m *Membership) SetAddr(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.addr = addr
}

// Partitions returns the number of partitions of each data topic.
// It is 0 until Run has read it from Kafka when Options.Partitions is 0.
func (m *Membership) Partitions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.partitions
}

// setPartitionsLocked sets the number of partitions and an empty view.
func (m *Membership) setPartitionsLocked(n int) {
	m.mu.partitions = n
	m.mu.view = &view{partitions: n, desired: make([][]string, n), owners: make([][]Node, n)}
}

// Owners returns the live store nodes serving partition p, caught up,
// preferred first; empty when none does. The caller owns the slice.
func (m *Membership) Owners(p int) []Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.view.Owners(p)
}

// Serving reports whether this node serves partition p now: a heartbeat
// this process sent said it was caught up on p. The heartbeat a node sent
// before it restarted, read back from the members topic, does not count:
// until the restarted node has heartbeated it serves nothing, so a query
// node that still goes by that old heartbeat is turned away (and asks the
// partition's next owner) rather than answered from a store still
// replaying the log. A store node's internal read endpoints answer only
// for the partitions it serves.
func (m *Membership) Serving(p int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.beat {
		return false
	}
	self := m.mu.table[m.opts.NodeID]
	ps, ok := self.partition(p)
	return ok && ps.CaughtUp
}

// Assignment returns the partitions this node must consume now (sorted;
// the caller owns the slice) and a channel closed when that set changes.
// A consumer loops: apply the set, wait on the channel, ask again. The set
// is empty until the node has read the members topic and heartbeated.
func (m *Membership) Assignment() ([]int, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mu.assigned), m.mu.assignCh
}

// Ready reports whether the node may take traffic: it has read the
// members topic and heartbeated and, with the store role, every partition
// assigned to it was caught up (within Options.MaxLag of the log's end) at
// once. Readiness latches: a node that later takes over a partition from a
// dead one stays ready while it catches up (it does not serve that
// partition until then). Ready returns nil or an error saying what is
// missing.
func (m *Membership) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.mu.ready:
		return nil
	case !m.mu.synced:
		return errors.New("cluster: reading the members topic")
	case !m.mu.beat:
		return errors.New("cluster: no heartbeat sent yet")
	}
	behind := m.behindLocked()
	return fmt.Errorf("cluster: %d assigned partitions not caught up to within %s: %v", len(behind), m.opts.MaxLag, behind)
}

// behindLocked returns the partitions assigned to this node (it is one of
// their owners) whose lag, as its last heartbeat said, is unknown or more
// than MaxLag.
func (m *Membership) behindLocked() []int {
	self := m.mu.table[m.opts.NodeID]
	var behind []int
	for p, ids := range m.mu.view.desired {
		if !slices.Contains(ids, m.opts.NodeID) {
			continue
		}
		if ps, ok := self.partition(p); !ok || ps.LagSeconds < 0 || ps.LagSeconds > m.opts.MaxLag.Seconds() {
			behind = append(behind, p)
		}
	}
	return behind
}

// applyRecord updates the table with a record read from the members topic
// (value nil: a tombstone, the member left). It reports whether the view
// may change: a member that appears, leaves, comes back to life or changes
// its address, roles or the partitions it serves; a heartbeat that only
// renews a live member does not (the next heartbeat tick recomputes the
// view for liveness and lag anyway).
func (m *Membership) applyRecord(key string, value []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.mu.table[key]
	if value == nil {
		delete(m.mu.table, key)
		return had
	}
	rec, err := decodeRecord(key, value)
	if err != nil {
		m.opts.Logger.Warn("skip heartbeat record", "node", key, "err", err)
		return false
	}
	if key == m.opts.NodeID && rec.Addr != m.mu.addr && m.mu.beat {
		m.opts.Logger.Error("another node heartbeats under this node id: give each node its own --node-id",
			"node", key, "addr", rec.Addr)
	}
	// Out of order (our own heartbeat is applied when sent, before it is
	// read back): keep the newer one.
	if had && old.Time > rec.Time {
		return false
	}
	m.mu.table[key] = rec
	return !had || !m.liveLocked(old) || !sameServing(old, rec)
}

// liveLocked says whether rec is live in the current view.
func (m *Membership) liveLocked(rec record) bool {
	_, ok := slices.BinarySearchFunc(m.mu.view.live, rec.ID, func(r record, id string) int { return strings.Compare(r.ID, id) })
	return ok
}

// sameServing says whether two heartbeats of a node mean the same to the
// view: address, roles and the partitions it serves caught up.
func sameServing(a, b record) bool {
	if a.Addr != b.Addr || !slices.Equal(a.Roles, b.Roles) {
		return false
	}
	var ua, ub []int
	for _, ps := range a.Partitions {
		if ps.CaughtUp {
			ua = append(ua, ps.Partition)
		}
	}
	for _, ps := range b.Partitions {
		if ps.CaughtUp {
			ub = append(ub, ps.Partition)
		}
	}
	return slices.Equal(ua, ub)
}

// recompute derives the view from the table at now and announces changes.
func (m *Membership) recompute(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recomputeLocked(now)
}

func (m *Membership) recomputeLocked(now time.Time) {
	if !m.mu.synced {
		return
	}
	old := m.mu.view
	ref := now
	if !m.mu.lostAt.IsZero() {
		ref = m.mu.lostAt
	}
	v := m.mu.table.view(m.opts.NodeID, ref, m.mu.partitions, m.opts.Replication, m.opts.Timeout)
	m.mu.view = v
	m.logMembersLocked(old, v)
	m.membersLive.Set(float64(len(v.live)))
	m.membersDead.Set(float64(len(v.dead)))
	m.consumed.Set(float64(len(v.assigned)))
	unserved := 0
	for _, o := range v.owners {
		if len(o) == 0 {
			unserved++
		}
	}
	m.unserved.Set(float64(unserved))
	changed := !slices.Equal(v.assigned, m.mu.assigned)
	if changed {
		m.opts.Logger.Info("assignment changed", "partitions", fmtInts(v.assigned), "was", fmtInts(m.mu.assigned))
		m.mu.assigned = v.assigned
		close(m.mu.assignCh)
		m.mu.assignCh = make(chan struct{})
	}
	if m.mu.beat && (changed || !m.mu.announced) {
		m.mu.announced = true
		for _, ch := range m.mu.subs {
			offer(ch, slices.Clone(v.assigned))
		}
	}
	if m.mu.beat && !m.mu.ready && (!slices.Contains(m.opts.Roles, RoleStore) || len(m.behindLocked()) == 0) {
		m.mu.ready = true
		m.opts.Logger.Info("cluster member ready", "node", m.opts.NodeID)
	}
}

// logMembersLocked logs members that became live or dead.
func (m *Membership) logMembersLocked(old, v *view) {
	was := map[string]bool{}
	for _, r := range old.live {
		was[r.ID] = true
	}
	for _, r := range v.live {
		if !was[r.ID] {
			m.opts.Logger.Info("member live", "node", r.ID, "addr", r.Addr, "roles", r.Roles)
		}
		delete(was, r.ID)
	}
	for id := range was {
		m.opts.Logger.Warn("member dead", "node", id)
	}
}

// fmtInts formats partition numbers for a log line.
func fmtInts(ps []int) string {
	b := []byte{'['}
	for i, p := range ps {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(append(b, ']'))
}

// AssignmentChan returns a channel on which this node's assignment (the
// partitions it must consume, sorted, the whole set each time) arrives: the
// first one once the node has read the members topic and heartbeated, then
// every change. It is for a consumer that takes a channel of whole sets.
// The channel holds one value: a newer set replaces an unread one (only the
// latest matters), so the membership never waits for the reader. It is
// closed when Run returns.
func (m *Membership) AssignmentChan() <-chan []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan []int, 1)
	switch {
	case m.mu.closed:
		close(ch)
		return ch
	case m.mu.announced:
		ch <- slices.Clone(m.mu.assigned)
	}
	m.mu.subs = append(m.mu.subs, ch)
	return ch
}

// offer puts v in ch (capacity 1), replacing an unread value; the caller
// is ch's only sender.
func offer(ch chan []int, v []int) {
	select {
	case <-ch:
	default:
	}
	ch <- v
}

// closeSubs closes the channels of AssignmentChan when Run returns.
func (m *Membership) closeSubs() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return
	}
	m.mu.closed = true
	for _, ch := range m.mu.subs {
		close(ch)
	}
	m.mu.subs = nil
}
