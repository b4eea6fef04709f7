package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/sextant-dev/sextant/query"
)

// BacktestOptions configure Backtest.
type BacktestOptions struct {
	// Step is the evaluation step (ms), the rule group's interval.
	Step int64
	// Warmup is history evaluated before the start (ms) so stateful words
	// are warm at the start, as the live evaluator's backfill makes them.
	Warmup int64
	// Simulate, when set, counts the notifications the route tree would
	// have sent for the alerts handed over at each step.
	Simulate func(steps []SimStep) int
}

// SimStep is what the notifier received at one evaluation.
type SimStep struct {
	At     time.Time
	Alerts []*Alert
}

// BacktestResult is what a rule would have done over a range.
type BacktestResult struct {
	Transitions   []Transition `json:"transitions"`
	Firing        []Interval   `json:"firing"`
	Notifications int          `json:"notifications"`
	Steps         int          `json:"steps"`
	// Active are the pending and firing instances after the last step.
	Active []*Instance `json:"-"`
}

// Interval is a firing period of an instance; End is 0 while still firing
// at the end of the range.
type Interval struct {
	Labels map[string]string `json:"labels"`
	Start  int64             `json:"start"` // ms
	End    int64             `json:"end"`   // ms
}

// Backtest evaluates r over [start, end) (ms, aligned down to the step)
// with the query engine and runs every step through the same state
// machine as live evaluation.
func Backtest(ctx context.Context, engine *query.Engine, r *Rule, start, end int64, opts BacktestOptions) (*BacktestResult, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	step := opts.Step
	if step <= 0 {
		return nil, fmt.Errorf("alerting: backtest step %dms is not positive", step)
	}
	start -= start % step
	end -= end % step
	if end <= start {
		return nil, &FieldError{Field: "e", Msg: "the range is empty"}
	}
	if n := (end - start) / step; n > 200_000 {
		return nil, &FieldError{Field: "s", Msg: fmt.Sprintf("the range has %d steps, more than 200000", n)}
	}
	styles, err := query.Parse(r.Expr, query.ParseOptions{})
	if err != nil {
		return nil, err
	}
	warm := opts.Warmup - opts.Warmup%step
	lines, err := EvalRange(ctx, engine, styles, start-warm, end, step)
	if err != nil {
		return nil, err
	}
	rs := newRuleState(r, "backtest")
	res := &BacktestResult{Transitions: []Transition{}, Firing: []Interval{}}
	open := map[string]int{} // fingerprint → index in res.Firing
	var sim []SimStep
	m := &Manager{opts: Options{}}
	samples := rs.prepare(lines)
	for t := start; t < end; t += step {
		// Every line of EvalRange starts at start-warm with the same step.
		i := int((t - (start - warm)) / step)
		for j := range samples {
			samples[j].Value = lines[j].Values[i]
		}
		trs := rs.eval(t, samples, nil, false)
		res.Steps++
		for _, tr := range trs {
			res.Transitions = append(res.Transitions, tr)
			fp := Fingerprint(tr.Labels)
			switch {
			case tr.To == Firing || tr.To == NoData || tr.To == Error:
				open[fp] = len(res.Firing)
				res.Firing = append(res.Firing, Interval{Labels: tr.Labels, Start: tr.At})
			case tr.From == Firing || tr.From == NoData || tr.From == Error:
				if i, ok := open[fp]; ok {
					res.Firing[i].End = tr.At
					delete(open, fp)
				}
			}
		}
		if opts.Simulate != nil {
			if alerts := m.alertsToSend(rs); len(alerts) > 0 {
				sim = append(sim, SimStep{At: time.UnixMilli(t), Alerts: alerts})
			}
		}
	}
	if opts.Simulate != nil {
		res.Notifications = opts.Simulate(sim)
	}
	for _, in := range rs.instances {
		if in.State == Pending || in.State == Firing {
			c := *in
			res.Active = append(res.Active, &c)
		}
	}
	return res, nil
}
