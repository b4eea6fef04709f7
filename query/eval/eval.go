package eval

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Range is the output time range [Start, End) with points every Step ms.
// Start and End are multiples of Step.
type Range struct {
	// Unix milliseconds. A point at T stands for the step interval
	// (T-Step, T], as Atlas's graph timestamps do (asl.md §3.2).
	Start, End, Step int64
}

// N is the number of points.
func (r Range) N() int {
	if r.Step <= 0 || r.End <= r.Start {
		return 0
	}
	return int((r.End - r.Start) / r.Step)
}

// Validate checks the range.
func (r Range) Validate() error {
	switch {
	case r.Step <= 0:
		return fmt.Errorf("eval: step %dms is not positive", r.Step)
	case r.Start%r.Step != 0 || r.End%r.Step != 0:
		return fmt.Errorf("eval: range [%d, %d) is not aligned to step %dms", r.Start, r.End, r.Step)
	case r.End <= r.Start:
		return fmt.Errorf("eval: empty range [%d, %d)", r.Start, r.End)
	}
	return nil
}

// Series is one output line.
type Series struct {
	Tags   tags.Set
	Label  string
	Values []float64 // Values[i] is at Range.Start + i*Range.Step
	// Offset is the time shift of the data behind the line (ms), shown in
	// legends as $(atlas.offset).
	Offset int64
}

// Stats describe the work of one evaluation.
type Stats struct {
	// Fetches counts store requests: a data expression used twice in
	// one expression is fetched once (the run's data cache).
	Fetches           int
	SeriesScanned     int // series the store read
	DatapointsScanned int // storage-step values the store read
	InputLines        int // lines returned by the store
	OutputLines       int
	FetchTime         time.Duration
}

// Options configure an Evaluator.
type Options struct {
	// MaxLines bounds the lines any step of an evaluation may hold.
	// Default 100 000.
	MaxLines int
	// MaxDatapoints bounds the datapoints held at once across the lines of
	// an evaluation. Default 50 M (400 MB of values).
	MaxDatapoints int
	// Now is the clock for "now" in :time-span; default the system clock.
	Now func() int64
}

// withDefaults fills the zero options. The limits are sized for one
// query on a shared server: 50 M float64 values are 400 MB, the most
// one evaluation may pin.
func (o Options) withDefaults() Options {
	if o.MaxLines == 0 {
		o.MaxLines = 100_000
	}
	if o.MaxDatapoints == 0 {
		o.MaxDatapoints = 50_000_000
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	return o
}

// Evaluator runs expressions against a store. It is safe for concurrent use.
type Evaluator struct {
	// q is the store, seen through the contract only (STYLE §2): a
	// local database, or the fan-out querier of a cluster.
	q    tsdb.Querier
	opts Options
}

// New returns an evaluator reading from q.
func New(q tsdb.Querier, opts Options) *Evaluator {
	return &Evaluator{q: q, opts: opts.withDefaults()}
}

// Eval evaluates e over r. Errors from limits are *tsdb.LimitError.
func (ev *Evaluator) Eval(ctx context.Context, e expr.TimeSeriesExpr, r Range) ([]Series, Stats, error) {
	if err := r.Validate(); err != nil {
		return nil, Stats{}, err
	}
	// Each evaluation has its own run: the cache and the budget are
	// per query, so concurrent Evals share nothing but the store.
	x := &run{ev: ev, ctx: ctx, r: r, n: r.N(), data: map[string][]Series{}}
	// The stats are returned with an error too: a query stopped by a
	// limit still tells how much it had read.
	out, err := x.eval(e)
	x.stats.OutputLines = len(out)
	return out, x.stats, err
}

// run is the state of one evaluation.
type run struct {
	ev    *Evaluator
	ctx   context.Context
	r     Range
	n     int
	data  map[string][]Series // fetched data expressions by String()
	stats Stats
	held  int // datapoints allocated so far
}

// alloc returns a line of n values, all NaN, charging the budget.
func (x *run) alloc() ([]float64, error) {
	x.held += x.n
	if x.held > x.ev.opts.MaxDatapoints {
		return nil, &tsdb.LimitError{Limit: "max-datapoints-per-query", Max: x.ev.opts.MaxDatapoints, Got: x.held}
	}
	v := make([]float64, x.n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v, nil
}

// checkLines enforces the line limit on an intermediate result.
func (x *run) checkLines(n int) error {
	if n > x.ev.opts.MaxLines {
		return &tsdb.LimitError{Limit: "max-lines-per-query", Max: x.ev.opts.MaxLines, Got: n}
	}
	// Checked at every node: a cancelled request stops between nodes
	// instead of finishing a large evaluation nobody reads.
	return x.ctx.Err()
}

// eval dispatches on the node type.
func (x *run) eval(e expr.TimeSeriesExpr) ([]Series, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, err
	}
	var (
		out []Series
		err error
	)
	switch n := e.(type) {
	case *expr.Aggregate:
		out, err = x.aggregate(n)
	case *expr.GroupBy:
		out, err = x.groupBy(n)
	case *expr.All:
		out, err = x.all(n)
	case *expr.Constant:
		out, err = x.generate(tags.New(tags.NameKey, expr.FormatDouble(n.V)), expr.FormatDouble(n.V), func(int64) float64 { return n.V })
	case *expr.Random:
		out, err = x.random(n)
	case *expr.Time:
		out, err = x.time(n)
	case *expr.TimeSpan:
		out, err = x.timeSpan(n)
	case *expr.Unary:
		out, err = x.unary(n)
	case *expr.Binary:
		out, err = x.binary(n)
	case *expr.MathAgg:
		out, err = x.mathAgg(n)
	case *expr.MathGroupBy:
		out, err = x.mathGroupBy(n)
	case *expr.Percentiles:
		out, err = x.percentiles(n)
	case *expr.SampleCount:
		out, err = x.sampleCount(n)
	case *expr.ApproxDistinct:
		out, err = x.approxDistinct(n)
	case *expr.As:
		out, err = x.as(n)
	// A macro evaluates its expansion; its display only names lines.
	case *expr.Rewrite:
		out, err = x.eval(n.Eval)
	case *expr.Stateful:
		out, err = x.stateful(n)
	case *expr.Stat:
		out, err = x.stat(n)
	// :filter resolves the placeholders when it is built; one that
	// reaches the evaluator was written outside a condition.
	case *expr.StatRef:
		err = userErrorf(":stat-%s can only be used inside the condition of :filter", n.Stat)
	case *expr.Filter:
		out, err = x.filter(n)
	case *expr.Priority:
		out, err = x.priority(n)
	case *expr.Consolidate:
		out, err = x.consolidate(n)
	// Every AST node is listed above: a new one must be added here,
	// so reaching the default is our bug, not the user's.
	default:
		err = fmt.Errorf("BUG: eval of %T", e)
	}
	if err != nil {
		return nil, err
	}
	return out, x.checkLines(len(out))
}

// generate makes one line from a function of the timestamp.
func (x *run) generate(ts tags.Set, label string, f func(t int64) float64) ([]Series, error) {
	v, err := x.alloc()
	if err != nil {
		return nil, err
	}
	for i := range v {
		v[i] = f(x.r.Start + int64(i)*x.r.Step)
	}
	return []Series{{Tags: ts, Label: label, Values: v}}, nil
}

// noData is the all-NaN line of an aggregate that matched nothing: tagged
// with the query's exact tags, or name=NO_DATA.
func (x *run) noData(q *tags.Query) ([]Series, error) {
	ts := tags.Set(nil)
	if q != nil {
		ts = q.ExactKeys()
	}
	// A query with no exact keys (a regex, :has) has no tags to
	// give the line: name=NO_DATA says what it is instead.
	if len(ts) == 0 {
		ts = tags.New(tags.NameKey, "NO_DATA")
	}
	v, err := x.alloc()
	if err != nil {
		return nil, err
	}
	return []Series{{Tags: ts, Label: "NO DATA", Values: v}}, nil
}
