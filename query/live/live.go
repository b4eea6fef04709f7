package live

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb"
)

// Options configure an Evaluator.
type Options struct {
	// Querier is the store the expressions read.
	Querier tsdb.Querier
	// StorageStep is the store's step in ms; live steps are multiples of it.
	StorageStep int64
	// Delay is how long after a step closes it is evaluated; default 5 s.
	// Negative means zero.
	Delay time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxExpressions bounds the distinct (expression, step) groups;
	// default 10 000. A subscription over it fails with *LimitError.
	MaxExpressions int
	// MaxWindow bounds the steps one evaluation of a stateful expression
	// covers (the steps since its origin for :des, :integral ...); default
	// 100 000. Past it the subscription fails with *LimitError at the
	// step that would exceed it.
	MaxWindow int
	// Workers is how many groups are evaluated at once; default
	// GOMAXPROCS. A subscription's updates always come from one goroutine
	// at a time, in step order.
	Workers int
	// Eval tunes the evaluations (limits); its Now defaults to the clock.
	Eval eval.Options
	// Registry receives the self-metrics; default a private one.
	Registry *lib.Registry
	// Logger receives the logs; default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Delay < 0 {
		o.Delay = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxExpressions == 0 {
		o.MaxExpressions = 10_000
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxWindow == 0 {
		o.MaxWindow = 100_000
	}
	if o.Eval.Now == nil {
		now := o.Now
		o.Eval.Now = func() int64 { return now().UnixMilli() }
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Querier == nil:
		return errors.New("live: no querier")
	case o.StorageStep <= 0:
		return fmt.Errorf("live: storage step %dms is not positive", o.StorageStep)
	case o.MaxExpressions < 0:
		return fmt.Errorf("live: max expressions %d is negative", o.MaxExpressions)
	}
	return nil
}

// Request is what a subscriber asks for.
type Request struct {
	// Expr is the stack-language program.
	Expr string
	// Step is the step in ms, a multiple of the storage step; 0 is the
	// storage step.
	Step int64
	// Backfill is how much history (ms) to deliver before the live steps.
	Backfill int64
}

// Line is one line of an update: Values[i] is at Start + i*Step, and
// End = Start + len(Values)*Step. Lines are shared between the
// subscribers of a group: read them, never modify them.
type Line struct {
	// ID identifies the line for the life of the subscription (a hash of
	// its presentation and tags).
	ID string
	// Label is the legend, as the graph API renders it.
	Label string
	// Tags are the line's tags.
	Tags             map[string]string
	Start, End, Step int64
	Values           []float64
}

// Update is what a subscriber receives for one or more consecutive steps.
type Update struct {
	// End is the end of the newest step covered: the timestamp after the
	// newest point (the newest point is at End-Step).
	End int64
	// Lines are the lines of the covered steps.
	Lines []Line
	// Err is set when the evaluation of these steps failed; Lines is then
	// empty.
	Err error
}

// LimitError is a limit of the evaluator that a subscription hit.
type LimitError struct {
	Limit    string
	Max, Got int
}

// Error names the limit, its value and what was needed.
func (e *LimitError) Error() string {
	return fmt.Sprintf("live: limit %s is %d, needed %d", e.Limit, e.Max, e.Got)
}

// RequestError is a request field that is not acceptable (other than the
// expression, whose errors are *stack.Error).
type RequestError struct {
	Field string
	Msg   string
}

// Error names the field.
func (e *RequestError) Error() string { return "live: " + e.Field + ": " + e.Msg }

// Evaluator runs live subscriptions. It is safe for concurrent use.
type Evaluator struct {
	opts   Options
	engine *query.Engine
	m      metrics
	// round shares fetches between the groups of one evaluateDue.
	round atomic.Pointer[fetchRound]
	// sels are the Selections of the groups' queries.
	sels selections

	mu struct {
		sync.Mutex
		groups map[string]*group
	}
}

type metrics struct {
	expressions *lib.Gauge
	subscribers *lib.Gauge
	evaluations *lib.Counter
	errors      *lib.Counter
	evalTime    *lib.Timer
	lag         *lib.Timer
	evals       atomic.Int64
}

// New returns an evaluator; Run drives it.
func New(opts Options) (*Evaluator, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	reg := opts.Registry
	e := &Evaluator{
		opts:   opts,
		engine: query.NewEngine(opts.Querier, opts.Eval),
		m: metrics{
			expressions: reg.Gauge("sextant.live.expressions"),
			subscribers: reg.Gauge("sextant.live.subscribers"),
			evaluations: reg.Counter("sextant.live.evaluations"),
			errors:      reg.Counter("sextant.live.evaluationErrors"),
			evalTime:    reg.Timer("sextant.live.stepEvaluationTime"),
			lag:         reg.Timer("sextant.live.lag"),
		},
	}
	e.mu.groups = map[string]*group{}
	return e, nil
}

// Evaluations returns how many group evaluations ran so far (one per group
// and closed step, plus gap fills), the figure that proves sharing.
func (e *Evaluator) Evaluations() int64 { return e.m.evals.Load() }

// Expressions returns the number of distinct live groups.
func (e *Evaluator) Expressions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.mu.groups)
}

// StorageStep returns the storage step in ms.
func (e *Evaluator) StorageStep() int64 { return e.opts.StorageStep }

// Delay returns the evaluation delay after a step closes.
func (e *Evaluator) Delay() time.Duration { return e.opts.Delay }

// LastClosed returns the newest point that is due for evaluation at the
// step (its interval closed at least Delay ago).
func (e *Evaluator) LastClosed(step int64) int64 {
	if step <= 0 {
		step = e.opts.StorageStep
	}
	return floorTo(e.opts.Now().Add(-e.opts.Delay).UnixMilli(), step)
}

// Run evaluates every group at each step close plus Delay until ctx ends;
// it returns nil then.
func (e *Evaluator) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		e.evaluateDue(ctx)
		// The next storage step close plus Delay: every live step is a
		// multiple of the storage step, so no close is missed.
		now := e.opts.Now()
		next := floorTo(now.Add(-e.opts.Delay).UnixMilli(), e.opts.StorageStep) + e.opts.StorageStep
		wait := time.UnixMilli(next).Add(e.opts.Delay).Sub(now)
		timer.Reset(max(wait, 0))
	}
}

// EvaluateDue evaluates, once, every group whose newest due point (by the
// clock) is past the last it evaluated, and fans the updates out: what Run
// does at every step close. It is for callers that drive the evaluator
// with a clock of their own (benchmarks of the alert rules); it must not
// run concurrently with Run or with itself.
func (e *Evaluator) EvaluateDue(ctx context.Context) { e.evaluateDue(ctx) }

// evaluateDue evaluates every group whose newest due point is past the
// last it evaluated.
func (e *Evaluator) evaluateDue(ctx context.Context) {
	e.mu.Lock()
	groups := make([]*group, 0, len(e.mu.groups))
	for _, g := range e.mu.groups {
		groups = append(groups, g)
	}
	e.mu.Unlock()
	start := time.Now()
	e.round.Store(newFetchRound())
	defer func() {
		e.round.Store(nil)
		e.sels.endRound()
	}()
	var n atomic.Int64
	next := atomic.Int64{}
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(groups) || ctx.Err() != nil {
				return
			}
			if e.evaluateGroup(ctx, groups[i]) {
				n.Add(1)
			}
		}
	}
	// The workers end with this call: Run owns them.
	var wg sync.WaitGroup
	for range min(e.opts.Workers, len(groups)) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	if n.Load() > 0 {
		e.m.evalTime.Record(time.Since(start))
	}
}

// Subscribe parses req, delivers its backfill through sink, and then
// delivers every live step. A bad expression is a *stack.Error, a bad step
// or backfill a *RequestError, a limit a *LimitError. The subscription
// ends with Close or when ctx ends. sink is called in step order, never
// concurrently for one subscription, never after Close returns, and must
// not block (the caller buffers).
func (e *Evaluator) Subscribe(ctx context.Context, req Request, sink func(Update)) (*Subscription, error) {
	styles, err := query.Parse(req.Expr, query.ParseOptions{})
	if err != nil {
		return nil, err
	}
	step := req.Step
	if step == 0 {
		step = e.opts.StorageStep
	}
	if step < 0 || step%e.opts.StorageStep != 0 {
		return nil, &RequestError{Field: "step", Msg: fmt.Sprintf("%s is not a positive multiple of the storage step %s",
			expr.FormatDuration(step), expr.FormatDuration(e.opts.StorageStep))}
	}
	if req.Backfill < 0 {
		return nil, &RequestError{Field: "backfill", Msg: "is negative"}
	}
	mem := memoryOf(styles, step)
	last := e.LastClosed(step)
	nBack := (req.Backfill + step - 1) / step
	if nBack > int64(e.opts.MaxWindow) {
		return nil, &RequestError{Field: "backfill", Msg: fmt.Sprintf("%d steps, limit is %d", nBack, e.opts.MaxWindow)}
	}
	origin := last + step - nBack*step
	key := normalize(styles, step)
	if mem != 0 {
		// State starts at the origin: only subscriptions starting together
		// share the stateful evaluation.
		key += "|origin=" + strconv.FormatInt(origin, 10)
	}
	s := &Subscription{e: e, sink: sink, next: origin}
	if nBack > 0 {
		r := eval.Range{Start: origin, End: last + step, Step: step}
		u := e.evalRange(ctx, e.engine, nil, styles, r, origin, mem)
		if u.Err != nil && ctx.Err() != nil {
			return nil, u.Err
		}
		s.deliver(u, origin)
	}
	g, err := e.join(key, styles, step, origin, mem, last, s)
	if err != nil {
		return nil, err
	}
	// g and stop are set under s.mu: the evaluator may deliver to s, and
	// ctx may end (calling Close on another goroutine), as soon as s is in g.
	s.mu.Lock()
	s.g = g
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, s.Close)
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
	return s, nil
}

// join adds s to the group of key, making the group when it is new.
func (e *Evaluator) join(key string, styles []*expr.Style, step, origin int64, mem int, last int64, s *Subscription) (*group, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.mu.groups[key]
	if g == nil {
		if len(e.mu.groups) >= e.opts.MaxExpressions {
			return nil, &LimitError{Limit: "max-live-expressions", Max: e.opts.MaxExpressions, Got: len(e.mu.groups) + 1}
		}
		g = &group{key: key, styles: styles, step: step, origin: origin, mem: mem, last: last,
			engine: query.NewEngine(newSelQuerier(e), e.opts.Eval)}
		if mem < 0 {
			g.carry = newCarry(styles, step)
		}
		e.mu.groups[key] = g
		e.m.expressions.Set(float64(len(e.mu.groups)))
	}
	g.subs = append(g.subs, s)
	e.m.subscribers.Set(e.m.subscribers.Value() + 1)
	return g, nil
}

// leave removes s from its group, dropping the group when it was the last.
func (e *Evaluator) leave(s *Subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := s.g
	for i, x := range g.subs {
		if x == s {
			g.subs = append(g.subs[:i:i], g.subs[i+1:]...)
			e.m.subscribers.Set(e.m.subscribers.Value() - 1)
			break
		}
	}
	if len(g.subs) == 0 && e.mu.groups[g.key] == g {
		delete(e.mu.groups, g.key)
		e.m.expressions.Set(float64(len(e.mu.groups)))
	}
}

// Subscription is one subscriber's live stream.
type Subscription struct {
	e    *Evaluator
	g    *group
	sink func(Update)
	stop func() bool

	// mu serializes sink calls with Close: the sink never blocks, so the
	// lock is held across it.
	mu     sync.Mutex
	closed bool
	next   int64 // the first point not yet delivered
}

// Close ends the subscription; sink is not called after it returns. It is
// safe to call more than once.
func (s *Subscription) Close() {
	s.mu.Lock()
	was, g, stop := s.closed, s.g, s.stop
	s.closed = true
	s.mu.Unlock()
	if was || g == nil {
		return
	}
	if stop != nil {
		stop()
	}
	s.e.leave(s)
}

// deliver hands u (whose first point is at from) to the sink, trimmed to
// the points the subscription does not have yet.
func (s *Subscription) deliver(u Update, from int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || u.End <= s.next {
		return
	}
	if from < s.next && u.Err == nil {
		u.Lines = trim(u.Lines, s.next)
	}
	s.next = u.End
	s.sink(u)
}

// trim drops the points before t from every line.
func trim(lines []Line, t int64) []Line {
	out := make([]Line, len(lines))
	for i, l := range lines {
		k := int((t - l.Start) / l.Step)
		k = min(max(k, 0), len(l.Values))
		l.Values = l.Values[k:]
		l.Start += int64(k) * l.Step
		out[i] = l
	}
	return out
}

// normalize is the group key of an expression: its presentations in
// canonical form, and the step.
func normalize(styles []*expr.Style, step int64) string {
	var b strings.Builder
	for _, st := range styles {
		b.WriteString(st.String())
		b.WriteByte(' ')
	}
	b.WriteString("|step=")
	b.WriteString(strconv.FormatInt(step, 10))
	return b.String()
}

// lineID hashes a line's identity within its expression.
func lineID(l *query.Line) string { return strconv.FormatUint(lineHash(l), 16) }

func lineHash(l *query.Line) uint64 {
	h := fnv.New64a()
	var buf [16]byte
	h.Write(strconv.AppendInt(buf[:0], int64(l.Expr), 10))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(buf[:0], l.Offset, 10))
	for _, t := range l.Tags {
		h.Write([]byte{0})
		h.Write([]byte(t.Key))
		h.Write([]byte{1})
		h.Write([]byte(t.Value))
	}
	return h.Sum64()
}

func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}
