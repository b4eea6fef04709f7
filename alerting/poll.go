package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
)

// PollOptions configure a PollSource.
type PollOptions struct {
	// Delay is how long after a step closes it is evaluated (--live-delay).
	Delay time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// PollSource is a SubscribeFunc source over the query engine: when a step
// closes (plus Delay) it evaluates each subscription's expression over its
// backfill window ending at that step and delivers the new steps. Stateful
// words see the whole window, as on the live evaluator. It serves tests,
// backtests and `sextant test rules`; the server uses query/live.
type PollSource struct {
	engine *query.Engine
	opts   PollOptions
	wake   chan struct{} // capacity 1: a pending wake-up is enough

	mu struct {
		sync.Mutex
		subs map[int]*pollSub
		next int
	}
}

type pollSub struct {
	ctx     context.Context
	styles  []*expr.Style
	req     Request
	sink    func(Update)
	lastEnd int64 // end of the last delivery (ms), 0 before the first
}

// NewPollSource returns a source evaluating with engine; Run drives it.
func NewPollSource(engine *query.Engine, opts PollOptions) *PollSource {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &PollSource{engine: engine, opts: opts, wake: make(chan struct{}, 1)}
	p.mu.subs = map[int]*pollSub{}
	return p
}

// Subscribe implements SubscribeFunc.
func (p *PollSource) Subscribe(ctx context.Context, req Request, sink func(Update)) (func(), error) {
	styles, err := query.Parse(req.Expr, query.ParseOptions{})
	if err != nil {
		return nil, err
	}
	if req.Step <= 0 {
		return nil, fmt.Errorf("alerting: step %dms is not positive", req.Step)
	}
	p.mu.Lock()
	id := p.mu.next
	p.mu.next++
	p.mu.subs[id] = &pollSub{ctx: ctx, styles: styles, req: req, sink: sink}
	p.mu.Unlock()
	p.poke()
	return func() {
		p.mu.Lock()
		delete(p.mu.subs, id)
		p.mu.Unlock()
	}, nil
}

func (p *PollSource) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run delivers steps until ctx ends.
func (p *PollSource) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := p.deliverDue(ctx)
		wait := time.Hour
		if next > 0 {
			wait = max(time.UnixMilli(next).Sub(p.opts.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// deliverDue evaluates every subscription with a newly closed step and
// returns the wall time (ms) of the next one.
func (p *PollSource) deliverDue(ctx context.Context) int64 {
	p.mu.Lock()
	subs := make([]*pollSub, 0, len(p.mu.subs))
	for _, s := range p.mu.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	var next int64
	for _, s := range subs {
		if ctx.Err() != nil {
			return 0
		}
		now := p.opts.Now().Add(-p.opts.Delay).UnixMilli()
		step := s.req.Step
		due := now - now%step + step // end of the steps closed by now
		if due > s.lastEnd {
			p.deliver(s, due)
		}
		at := s.lastEnd + p.opts.Delay.Milliseconds()
		if next == 0 || at < next {
			next = at
		}
	}
	return next
}

func (p *PollSource) deliver(s *pollSub, end int64) {
	step := s.req.Step
	start := end - max(s.req.Backfill, step)
	lines, err := EvalRange(s.ctx, p.engine, s.styles, start, end, step)
	from := s.lastEnd
	s.lastEnd = end
	if s.ctx.Err() != nil {
		return
	}
	if err != nil {
		s.sink(Update{End: end, Err: err})
		return
	}
	if from > start {
		for i := range lines {
			k := int((from - start) / step)
			lines[i].Start = from
			lines[i].Values = lines[i].Values[min(k, len(lines[i].Values)):]
		}
	}
	s.sink(Update{End: end, Lines: lines})
}

// EvalRange evaluates presentations over [start, end) at step into lines.
func EvalRange(ctx context.Context, engine *query.Engine, styles []*expr.Style, start, end, step int64) ([]Line, error) {
	res, err := engine.Eval(ctx, styles, eval.Range{Start: start, End: end, Step: step})
	if err != nil {
		return nil, err
	}
	out := make([]Line, len(res.Lines))
	for i, l := range res.Lines {
		// The presentation and the tags identify a line, as on the live
		// evaluator.
		out[i] = Line{ID: strconv.Itoa(l.Expr) + "|" + l.Tags.String(), Tags: l.Tags.Map(), Start: start, Step: step, Values: l.Values}
	}
	return out, nil
}
