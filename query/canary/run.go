package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
)

// Run states.
const (
	StateRunning = "running"
	StateDone    = "done"  // reached its verdict
	StateError   = "error" // could not be judged (its request no longer compiles)
)

// kvPrefix is where runs live in the KV store: canary/runs/<id> holds the
// run, canary/runs/<id>/<seq> each interval's answer.
const kvPrefix = "canary/runs/"

// ErrNotFound is returned for a run that does not exist.
var ErrNotFound = errors.New("canary: run not found")

// Run is a continuous judgement and what it has found so far.
type Run struct {
	ID    string `json:"id"`
	State string `json:"state"` // running, done or error
	// Verdict is the final result (pass, marginal or fail) once done.
	Verdict string `json:"verdict,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Created is when the run was started; Start the beginning of its
	// window and End the end of its lifetime (Unix ms).
	Created int64 `json:"created"`
	Start   int64 `json:"start"`
	End     int64 `json:"end"`
	// Next is when the next interval is judged, 0 once done.
	Next int64 `json:"next,omitempty"`
	// Notified is the outcome of the webhook call: "" (none configured),
	// "pending" while it is being delivered (retried with backoff, and
	// again after a restart), "ok", or the last error once given up.
	Notified  string     `json:"notified,omitempty"`
	Request   RunRequest `json:"request"`
	Intervals []Interval `json:"intervals"`
	interval  int64      // ms
	plan      *plan      // compiled request
	seq       int        // intervals judged
	last      *Answer    // the latest answer
}

// Interval is the judgement of one interval of a run: the window [Start of
// the run, At) judged at At.
type Interval struct {
	At     int64   `json:"at"`
	Answer *Answer `json:"answer,omitempty"`
	// Error is set when the interval could not be judged (a limit, a
	// store failure); the run goes on.
	Error string `json:"error,omitempty"`
}

// NotifyFunc is called with a run that reached its verdict and with its
// webhook URL. cmd builds it from the HTTP layer's webhook poster. An error
// is retried with backoff, unless it wraps ErrPermanent (the receiver
// refused the payload: sending it again would not help).
type NotifyFunc func(ctx context.Context, url string, r *Run) error

// ErrPermanent marks a webhook failure that retrying cannot fix, such as a
// 4xx answer.
var ErrPermanent = errors.New("permanent webhook failure")

// Webhook delivery: up to webhookAttempts calls, the waits between them
// doubling from webhookBackoff (1, 2, 4, 8, 16 s: about half a minute for a
// receiver to come back, as a deploy pipeline's gate would wait).
const (
	webhookAttempts = 6
	webhookBackoff  = time.Second
	webhookTimeout  = 30 * time.Second
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Judge *Judge
	KV    tsdb.KV
	// Notify calls webhooks; nil disables them.
	Notify NotifyFunc
	// MaxActive bounds the runs judged at once; default 100.
	MaxActive int
	// Now is the clock; default time.Now. Timers use the time package, so
	// tests drive both with testing/synctest.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
	// Owns, when set, says whether this runner judges run id; nil: every
	// run. Query nodes of a cluster share one KV and each judges the runs
	// it owns; after its answers change, or another node started a run,
	// call Sync.
	Owns func(id string) bool
}

// Runner keeps continuous runs. Start and Get are safe for concurrent
// use; Run judges the runs and is called once, by cmd's run group.
type Runner struct {
	opts RunnerOptions
	wake chan struct{} // capacity 1: a pending wake-up is enough
	// deliveries tracks the webhook deliveries in flight; Run waits for
	// them before it returns.
	deliveries sync.WaitGroup
	// mu guards active. It is never held across a judgement, a KV write
	// or a webhook call.
	mu struct {
		sync.Mutex
		active map[string]*Run
		// delivering are the runs whose webhook this process is
		// calling (bounded by the runs judged).
		delivering map[string]bool
	}
	// syncWanted asks the Run loop to read the runs from the KV again.
	syncWanted atomic.Bool

	m struct {
		started, verdicts *lib.Counter
	}
}

// NewRunner returns a Runner.
func NewRunner(opts RunnerOptions) (*Runner, error) {
	if opts.Judge == nil || opts.KV == nil {
		return nil, errors.New("canary: runner needs a judge and a KV store")
	}
	if opts.MaxActive == 0 {
		opts.MaxActive = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	r := &Runner{opts: opts, wake: make(chan struct{}, 1)}
	r.mu.active = map[string]*Run{}
	r.mu.delivering = map[string]bool{}
	r.m.started = opts.Registry.Counter("sextant.canary.runs", "event", "started")
	r.m.verdicts = opts.Registry.Counter("sextant.canary.runs", "event", "verdict")
	return r, nil
}

// Start validates req, stores a new run and schedules it. Errors from the
// request are *FieldError.
func (r *Runner) Start(ctx context.Context, req *RunRequest) (*Run, error) {
	now := r.opts.Now().UnixMilli()
	run, err := r.prepare(req, now)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	n := len(r.mu.active)
	r.mu.Unlock()
	if n >= r.opts.MaxActive {
		return nil, &FieldError{Field: "body", Msg: fmt.Sprintf("%d runs are active, limit is %d", n, r.opts.MaxActive), Err: ErrTooMany}
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	run.ID = hex.EncodeToString(id)
	run.Created = now
	if err := r.putRun(ctx, run); err != nil {
		return nil, err
	}
	out := run.public() // before the loop may touch run
	if r.owns(run.ID) {
		r.mu.Lock()
		r.mu.active[run.ID] = run
		r.mu.Unlock()
	}
	r.m.started.Increment()
	r.opts.Logger.Info("canary run started", "run", run.ID, "start", fmtMs(run.Start), "end", fmtMs(run.End))
	r.poke()
	return out, nil
}

// ErrTooMany marks a refused run: too many are active.
var ErrTooMany = errors.New("canary: too many active runs")

// prepare compiles req into a run: the window starts at s (default now)
// and the run lives until lifetime after it.
func (r *Runner) prepare(req *RunRequest, now int64) (*Run, error) {
	jr := req.Request
	if jr.S == "" {
		jr.S = "now"
	}
	if strings.HasPrefix(jr.S, "e") {
		return nil, fieldErr("s", "%q: the start of a run cannot be relative to e (it has none)", jr.S)
	}
	if req.Lifetime == "" {
		return nil, fieldErr("lifetime", "missing; give a duration such as 1h")
	}
	// The window of the last interval is [s, s+lifetime): check it fits.
	jr.E = "s+" + req.Lifetime
	p, err := compile(&jr, now, r.opts.Judge.opts.StorageStep, r.opts.Judge.opts.MaxPoints, r.opts.Judge.opts.MaxMetrics)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "e" {
			fe.Field = "lifetime"
		}
		return nil, err
	}
	interval, lifetime, err := validateRun(req, p.step, p.minCount)
	if err != nil {
		return nil, err
	}
	run := &Run{State: StateRunning, Start: p.start, End: p.start + lifetime, Request: *req,
		interval: interval, plan: p, Intervals: []Interval{}}
	run.Request.S = fmt.Sprint(p.start) // resolved, so a restart resumes the same window
	run.Next = run.nextAfter(now)
	return run, nil
}

// Get returns a run with every interval judged so far.
func (r *Runner) Get(ctx context.Context, id string) (*Run, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	b, err := r.opts.KV.Get(ctx, kvPrefix+id)
	if errors.Is(err, tsdb.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read canary run %s: %w", id, err)
	}
	var run Run
	if err := json.Unmarshal(b, &run); err != nil {
		return nil, fmt.Errorf("decode canary run %s: %w", id, err)
	}
	run.Intervals = []Interval{}
	err = r.opts.KV.Scan(ctx, kvPrefix+id+"/", func(_ string, v []byte) error {
		var iv Interval
		if err := json.Unmarshal(v, &iv); err != nil {
			return fmt.Errorf("decode interval: %w", err)
		}
		run.Intervals = append(run.Intervals, iv)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read canary run %s: %w", id, err)
	}
	return &run, nil
}

// Run judges the runs until ctx ends. It first resumes the runs a previous
// process left running.
func (r *Runner) Run(ctx context.Context) error {
	defer r.deliveries.Wait()
	if err := r.resume(ctx); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		if r.syncWanted.Swap(false) {
			if err := r.resume(ctx); err != nil && ctx.Err() == nil {
				r.opts.Logger.Warn("sync canary runs", "err", err)
			}
		}
		now := r.opts.Now().UnixMilli()
		due, next := r.due(now)
		for _, run := range due {
			r.step(ctx, run, now)
		}
		if len(due) > 0 {
			continue // the clock moved while judging
		}
		wait := time.Hour
		if next > 0 {
			wait = time.Duration(next-now) * time.Millisecond
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer.C:
		}
	}
	return nil
}

// due returns the runs whose next interval is at or before now, and the
// earliest next time of the others (0 for none).
func (r *Runner) due(now int64) ([]*Run, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due []*Run
	next := int64(0)
	for _, run := range r.mu.active {
		switch {
		case run.Next <= now:
			due = append(due, run)
		case next == 0 || run.Next < next:
			next = run.Next
		}
	}
	return due, next
}

// step judges one interval of run at now and finishes the run on fail or
// at the end of its lifetime.
func (r *Runner) step(ctx context.Context, run *Run, now int64) {
	at := min(now, run.End)
	iv := Interval{At: at}
	// The step in progress is left out: its values are still partial.
	a, err := r.opts.Judge.judge(ctx, run.plan, window(run.Start, max(at-run.plan.step, run.Start+run.plan.step), run.plan.step))
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		iv.Error = err.Error()
		r.opts.Logger.Warn("canary interval not judged", "run", run.ID, "err", err)
	} else {
		iv.Answer = a
		run.last = a
	}
	run.seq++
	if b, err := json.Marshal(iv); err == nil {
		if err := r.opts.KV.Put(ctx, fmt.Sprintf("%s%s/%06d", kvPrefix, run.ID, run.seq), b); err != nil {
			r.opts.Logger.Warn("store canary interval", "run", run.ID, "err", err)
		}
	}
	switch {
	case run.last != nil && run.last.Result == Fail:
		r.finish(ctx, run, Fail, "stopped early: "+run.last.Reason)
	case at >= run.End && run.last == nil:
		run.State = StateError
		r.finish(ctx, run, "", "no interval could be judged: "+iv.Error)
	case at >= run.End:
		r.finish(ctx, run, run.last.Result, run.last.Reason)
	default:
		run.Next = run.nextAfter(now)
		if err := r.putRun(ctx, run); err != nil {
			r.opts.Logger.Warn("store canary run", "run", run.ID, "err", err)
		}
	}
}

// finish records the verdict, calls the webhook and retires the run.
func (r *Runner) finish(ctx context.Context, run *Run, verdict, reason string) {
	if run.State == StateRunning {
		run.State = StateDone
	}
	run.Verdict, run.Reason, run.Next = verdict, reason, 0
	r.m.verdicts.Increment()
	r.opts.Logger.Info("canary run finished", "run", run.ID, "verdict", verdict, "reason", reason)
	notify := run.Request.Webhook != "" && r.opts.Notify != nil
	if notify {
		// Recorded before the first attempt, so that a restart during the
		// delivery delivers again rather than forgetting the verdict.
		run.Notified = "pending"
	}
	if err := r.putRun(ctx, run); err != nil {
		r.opts.Logger.Warn("store canary run", "run", run.ID, "err", err)
	}
	r.mu.Lock()
	delete(r.mu.active, run.ID)
	r.mu.Unlock()
	if notify {
		r.deliver(ctx, run)
	}
}

// deliver calls the run's webhook in the background, retrying failures with
// backoff, and records the outcome; it reports false when the delivery is
// already under way. The run has left the active set, so
// only this goroutine touches it. A delivery cut short by shutdown stays
// "pending" and is resumed by the next process.
func (r *Runner) deliver(ctx context.Context, run *Run) bool {
	r.mu.Lock()
	if r.mu.delivering[run.ID] {
		r.mu.Unlock()
		return false
	}
	r.mu.delivering[run.ID] = true
	r.mu.Unlock()
	r.deliveries.Add(1)
	go func() {
		defer r.deliveries.Done()
		// Forgotten after the outcome is stored, so that a Sync reading
		// "pending" always finds the delivery still listed here.
		defer func() {
			r.mu.Lock()
			delete(r.mu.delivering, run.ID)
			r.mu.Unlock()
		}()
		// The webhook sees the run with its intervals, as GET answers.
		full := run.public()
		full.Intervals = r.intervals(ctx, run.ID)
		var err error
		wait := webhookBackoff
		for attempt := 1; ; attempt++ {
			wctx, cancel := context.WithTimeout(ctx, webhookTimeout)
			err = r.opts.Notify(wctx, run.Request.Webhook, full)
			cancel()
			if err == nil || errors.Is(err, ErrPermanent) || attempt == webhookAttempts || ctx.Err() != nil {
				break
			}
			r.opts.Logger.Info("canary webhook failed, retrying", "run", run.ID, "attempt", attempt, "in", wait, "err", err)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			wait *= 2
		}
		if ctx.Err() != nil {
			return // still pending: the next process delivers it
		}
		run.Notified = "ok"
		if err != nil {
			run.Notified = err.Error()
			r.opts.Logger.Warn("canary webhook", "run", run.ID, "err", err)
		}
		if err := r.putRun(ctx, run); err != nil {
			r.opts.Logger.Warn("store canary run", "run", run.ID, "err", err)
		}
	}()
	return true
}

// intervals returns the verdicts a run has recorded so far, empty when the
// run cannot be read: for the webhook's payload, and to restore a run's
// sequence and last answer when the runner resumes it after a restart.
func (r *Runner) intervals(ctx context.Context, id string) []Interval {
	full, err := r.Get(ctx, id)
	if err != nil {
		return []Interval{}
	}
	return full.Intervals
}

// Sync makes the runner read the runs from the KV store again, soon, on
// its Run loop: it takes up the running runs it owns (Options.Owns) and
// does not judge yet (started on another node, or handed over by a node
// that died) and the verdicts they left undelivered, and lets go of the
// runs it no longer owns. It does not block.
func (r *Runner) Sync() {
	r.syncWanted.Store(true)
	r.poke()
}

// owns says whether this runner judges run id.
func (r *Runner) owns(id string) bool { return r.opts.Owns == nil || r.opts.Owns(id) }

// resume loads the runs still running from the KV store, and delivers the
// verdicts whose webhook call a previous process did not finish: those it
// owns and does not judge or deliver yet. Runs it judges and no longer
// owns are dropped (their owner resumes them from the store).
func (r *Runner) resume(ctx context.Context) error {
	var runs, pending []*Run
	err := r.opts.KV.Scan(ctx, kvPrefix, func(k string, v []byte) error {
		if strings.Contains(strings.TrimPrefix(k, kvPrefix), "/") {
			return nil // an interval
		}
		var run Run
		if err := json.Unmarshal(v, &run); err != nil {
			r.opts.Logger.Warn("skip unreadable canary run", "key", k, "err", err)
			return nil
		}
		switch {
		case !r.owns(run.ID):
		case run.State == StateRunning:
			runs = append(runs, &run)
		case run.Notified == "pending":
			pending = append(pending, &run)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("resume canary runs: %w", err)
	}
	r.mu.Lock()
	for id := range r.mu.active {
		if !r.owns(id) {
			delete(r.mu.active, id)
			r.opts.Logger.Info("canary run handed over", "run", id)
		}
	}
	runs = slices.DeleteFunc(runs, func(run *Run) bool { return r.mu.active[run.ID] != nil })
	r.mu.Unlock()
	if r.opts.Notify != nil {
		for _, run := range pending {
			if r.deliver(ctx, run) {
				r.opts.Logger.Info("canary webhook resumed", "run", run.ID)
			}
		}
	}
	for _, run := range runs {
		prep, err := r.prepare(&run.Request, run.Created)
		if err != nil {
			run.State, run.Reason = StateError, "cannot resume: "+err.Error()
			if perr := r.putRun(ctx, run); perr != nil {
				return perr
			}
			continue
		}
		run.plan, run.interval = prep.plan, prep.interval
		run.Intervals = nil
		for _, iv := range r.intervals(ctx, run.ID) {
			run.seq++
			if iv.Answer != nil {
				run.last = iv.Answer
			}
		}
		r.mu.Lock()
		r.mu.active[run.ID] = run
		r.mu.Unlock()
		r.opts.Logger.Info("canary run resumed", "run", run.ID)
	}
	return nil
}

// putRun stores the run record (without its intervals, kept apart).
func (r *Runner) putRun(ctx context.Context, run *Run) error {
	rec := run.public()
	rec.Intervals = nil
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode canary run: %w", err)
	}
	if err := r.opts.KV.Put(ctx, kvPrefix+run.ID, b); err != nil {
		return fmt.Errorf("store canary run %s: %w", run.ID, err)
	}
	return nil
}

// poke wakes the scheduler after a run was added or stopped, without
// blocking: a pending wake-up already covers this one.
func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// nextAfter is the first interval boundary after now, at most End.
func (run *Run) nextAfter(now int64) int64 {
	if now >= run.End {
		return run.End
	}
	k := (now-run.Start)/run.interval + 1
	if now < run.Start {
		k = 1
	}
	return min(run.Start+k*run.interval, run.End)
}

// public is a copy of the exported fields.
func (run *Run) public() *Run {
	return &Run{ID: run.ID, State: run.State, Verdict: run.Verdict, Reason: run.Reason, Created: run.Created,
		Start: run.Start, End: run.End, Next: run.Next, Notified: run.Notified, Request: run.Request,
		Intervals: []Interval{}}
}

// validID reports whether id has the shape of a run id (16 hex digits), so
// a malformed id is a 404 without a store lookup.
func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
