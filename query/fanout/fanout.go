package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
)

// Owners tells the query node which store nodes serve each partition. It
// is the membership's view (ingest's cluster package provides it; cmd
// wires it in). Implementations are safe for concurrent use; the answers
// may change between calls and the querier reads them once per request.
type Owners interface {
	// Partitions returns the number of partitions (the same for metrics
	// and spans).
	Partitions() int
	// Owners returns the caught-up store nodes serving partition p,
	// preferred first. The caller does not modify the slice.
	Owners(p int) []Node
}

// Node is a store node: its id and the address (host:port, or a URL with
// a scheme) where its HTTP API listens.
type Node struct {
	ID, Addr string
}

// ErrUnavailable means no store node answered for any partition of a read
// (or for the one partition of a trace). It matches tsdb.ErrOverloaded and
// tracing.ErrOverloaded with errors.Is, so the APIs answer 503 and a
// client retries later.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string { return "fanout: no store node answered" }

// Is makes the error match the stores' "retry later" errors.
func (unavailableError) Is(target error) bool {
	return target == tsdb.ErrOverloaded || target == tracing.ErrOverloaded
}

// Options configure a Querier.
type Options struct {
	Owners Owners
	// Client makes the internal requests; default a client of its own.
	Client *http.Client
	// AuthToken, when set, is sent as a bearer token (the cluster's
	// --auth-token).
	AuthToken string
	// AttemptTimeout bounds one store node's answer when the request has
	// no deadline (default 30 s). With a deadline, a node that has a
	// replica behind it gets half the remaining time, so that the replica
	// can still answer within the deadline.
	AttemptTimeout time.Duration
	// EndOffsets returns the end offset of every partition of a log, for
	// strong reads (WithConsistency); nil: a strong read fails with
	// ErrUnavailable. Strong reads that arrive together share its calls
	// (endlist.go); a call gets a context of its own, of at most 10 s.
	EndOffsets func(ctx context.Context, log Log) ([]int64, error)
	// Limits are the query limits of a fetch (a single node's
	// max-series-per-query, max-datapoints-per-query and
	// max-bytes-per-query), enforced on the total over the store nodes: a
	// fetch over them fails with the *tsdb.LimitError one store holding
	// all the data would give. Zero measures are not limited here (each
	// store node still applies its own limits to its share).
	Limits   tsdb.Cost
	Logger   *slog.Logger
	Registry *lib.Registry
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.Owners == nil {
		return errors.New("fanout: no Owners")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}}
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	return o
}

// Querier reads a cluster: it implements tsdb.Querier, tracing.Reader and
// tracing.Catalog by asking one owner of every partition, failing over to
// the next owner when one does not answer, and merging the answers. When
// no owner of a partition answers, the answer holds what the others said
// and is marked partial in the request's context (tsdb.MarkPartial,
// tracing.MarkPartial); when none answered at all it is ErrUnavailable.
// Safe for concurrent use.
type Querier struct {
	opts Options
	ends *endLister // nil without Options.EndOffsets
	m    struct {
		failovers, partial, strong *lib.Counter
		latency                    *lib.Timer
	}
}

// New returns a Querier over the store nodes opts.Owners names.
func New(opts Options) (*Querier, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	q := &Querier{opts: opts.withDefaults()}
	reg := q.opts.Registry
	q.m.failovers = reg.Counter("sextant.cluster.fanout.failovers")
	q.m.partial = reg.Counter("sextant.cluster.fanout.partial")
	q.m.latency = reg.Timer("sextant.cluster.fanout.latency")
	q.m.strong = reg.Counter("sextant.cluster.fanout.strongReads")
	if q.opts.EndOffsets != nil {
		q.ends = newEndLister(q.opts.EndOffsets, reg.Counter("sextant.cluster.fanout.endListings"))
	}
	return q, nil
}

// Close ends the listings of end offsets under way (the strong reads
// waiting on them fail) and releases the idle connections of the
// querier's own client.
func (q *Querier) Close() error {
	if q.ends != nil {
		q.ends.close()
	}
	q.opts.Client.CloseIdleConnections()
	return nil
}

// fatalError is an answer a replica would repeat (a limit, a malformed
// request): it ends the read instead of failing over.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// scatter asks, for every partition of parts, one of its owners: call gets
// a node and the partitions it is asked for. A node that fails is skipped
// for the rest of the read and its partitions go to their next owner.
// scatter returns the answers and the partitions no owner answered for; an
// error of call wrapped in *fatalError ends the read with that error, and
// so does b (nil: none) when the nodes' costs add up to more than the
// query's limits.
func scatter[T any](ctx context.Context, q *Querier, parts []int, b *budget, call func(ctx context.Context, n Node, parts []int) (T, error)) ([]T, []int, error) {
	if len(parts) == 0 {
		// The membership has not read the partition count yet (a query
		// node just started): no answer rather than an empty one.
		return nil, nil, ErrUnavailable
	}
	ctx, stop := b.start(ctx)
	defer stop()
	owners := make(map[int][]Node, len(parts))
	for _, p := range parts {
		owners[p] = q.opts.Owners.Owners(p)
	}
	next := make(map[int]int, len(parts)) // index of the owner to ask next
	failed := map[string]bool{}
	pending := parts
	var missing []int
	var out []T
	for round := 0; len(pending) > 0; round++ {
		// Plan: each pending partition goes to its first owner not failed.
		plan := map[string][]int{}
		nodes := map[string]Node{}
		var order []string
		for _, p := range pending {
			os := owners[p]
			for next[p] < len(os) && failed[os[next[p]].ID] {
				next[p]++
			}
			if next[p] >= len(os) {
				missing = append(missing, p)
				continue
			}
			n := os[next[p]]
			if _, ok := plan[n.ID]; !ok {
				order = append(order, n.ID)
				nodes[n.ID] = n
			}
			plan[n.ID] = append(plan[n.ID], p)
		}
		if len(order) == 0 {
			break
		}
		if round > 0 {
			q.m.failovers.Add(float64(len(order)))
		}
		type result struct {
			v   T
			err error
		}
		results := make([]result, len(order))
		b.startRound(order)
		var wg sync.WaitGroup
		for i, id := range order {
			ps := plan[id]
			actx, cancel := q.attemptContext(ctx, ps, owners, next)
			wg.Go(func() {
				defer cancel()
				v, err := call(actx, nodes[id], ps)
				b.ended(id, err)
				results[i] = result{v, err}
			})
		}
		wg.Wait()
		b.endRound()
		if err := b.err(); err != nil {
			return nil, nil, err
		}
		pending = nil
		for i, id := range order {
			r := results[i]
			var fe *fatalError
			switch {
			case r.err == nil:
				out = append(out, r.v)
				continue
			case errors.As(r.err, &fe):
				return nil, nil, fe.err
			case ctx.Err() != nil:
				return nil, nil, ctx.Err()
			}
			q.opts.Logger.Warn("store node did not answer", "node", id, "addr", nodes[id].Addr, "err", r.err)
			failed[id] = true
			pending = append(pending, plan[id]...)
		}
	}
	slices.Sort(missing)
	return out, missing, nil
}

// attemptContext bounds one node's answer: half the remaining time when a
// partition asked of it has another owner to fail over to, else all of it.
func (q *Querier) attemptContext(ctx context.Context, ps []int, owners map[int][]Node, next map[int]int) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, q.opts.AttemptTimeout)
	}
	for _, p := range ps {
		if next[p]+1 < len(owners[p]) {
			return context.WithTimeout(ctx, time.Until(d)/2)
		}
	}
	return context.WithCancel(ctx)
}

// allPartitions returns 0 ... n-1.
func allPartitions(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// post sends an internal request and returns the answer's body. A status
// a replica would repeat (4xx) comes back as *fatalError, except 404
// which is tracing.ErrNotFound. onCost, when set, hears the cost a store
// node tells in an informational answer before its answer (CostHeader).
func (q *Querier) post(ctx context.Context, n Node, path string, body []byte, onCost func(tsdb.Cost)) ([]byte, error) {
	url := n.Addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if onCost != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				if c, ok := parseCost(h.Get(CostHeader)); ok && code == http.StatusEarlyHints {
					onCost(c)
				}
				return nil
			},
		})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(body))
	if err != nil {
		return nil, &fatalError{fmt.Errorf("fanout: node %s: %w", n.ID, err)}
	}
	req.Header.Set("Content-Type", wireMediaType)
	if q.opts.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+q.opts.AuthToken)
	}
	resp, err := q.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("read answer of node %s: %w", n.ID, err)
	}
	if resp.StatusCode == http.StatusOK {
		return data, nil
	}
	var we wireError
	_ = json.Unmarshal(data, &we)
	switch {
	case resp.StatusCode == http.StatusNotFound && path == PathTrace:
		return nil, tracing.ErrNotFound
	case resp.StatusCode == http.StatusUnprocessableEntity && we.Limit != "":
		return nil, &fatalError{&tsdb.LimitError{Limit: we.Limit, Max: we.Max, Got: we.Got, Detail: we.Detail}}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		return nil, &fatalError{fmt.Errorf("fanout: node %s answered %d: %s", n.ID, resp.StatusCode, we.Message)}
	}
	return nil, fmt.Errorf("fanout: node %s answered %d: %s", n.ID, resp.StatusCode, we.Message)
}

// maxAnswer bounds the body of an internal answer (the store's own
// max-bytes-per-query keeps real answers far below it).
const maxAnswer = 4 << 30

// readBody reads an answer in one allocation when its length is known.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= maxAnswer {
		data := make([]byte, n)
		_, err := io.ReadFull(resp.Body, data)
		return data, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
}
