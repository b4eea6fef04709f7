package promql

import (
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// call evaluates a function of the subset.
func (x *run) call(c *parser.Call) (value, error) {
	name := c.Func.Name
	if !supportedFuncs[name] {
		return nil, badData("function %q is not supported by Sextant", name)
	}
	if f, ok := rangeFuncs[name]; ok {
		return x.rangeFunc(c, f)
	}
	if f, ok := mathFuncs[name]; ok {
		v, err := x.vectorArg(c.Args[0])
		if err != nil {
			return nil, err
		}
		return mapValues(v, true, func(_ int, f1 float64) float64 { return f(f1) }), nil
	}
	switch name {
	case "round":
		return x.round(c)
	case "clamp", "clamp_min", "clamp_max":
		return x.clamp(c)
	case "time":
		s := make(scalar, x.n)
		for i := range s {
			s[i] = float64(x.at(i)) / 1000
		}
		return s, nil
	case "vector":
		s, err := x.scalarArg(c.Args[0])
		if err != nil {
			return nil, err
		}
		return vector{{tags: tags.Set{}, v: slices.Clone(s)}}, nil
	case "scalar":
		return x.scalar(c)
	case "absent":
		return x.absent(c)
	case "label_replace":
		return x.labelReplace(c)
	case "label_join":
		return x.labelJoin(c)
	case "sort", "sort_desc":
		return x.sort(c, name == "sort_desc")
	case "sort_by_label", "sort_by_label_desc":
		return x.sortByLabel(c, name == "sort_by_label_desc")
	case "histogram_quantile":
		return x.histogramQuantile(c)
	}
	return nil, badData("function %q is not supported by Sextant", name)
}

// mathFuncs are the pointwise functions with a direct Go equivalent; their
// results keep the series' tags but not its name.
var mathFuncs = map[string]func(float64) float64{
	"abs": math.Abs, "ceil": math.Ceil, "floor": math.Floor, "sqrt": math.Sqrt,
	"exp": math.Exp, "ln": math.Log, "log2": math.Log2, "log10": math.Log10,
}

// mapValues applies f to every present value; drop removes the name, as
// Prometheus does for any function that changes what the value measures.
// A NaN is an absent point here: the store keeps no NaN samples, so a gap
// in a line is never a value a function could transform.
func mapValues(v vector, drop bool, f func(p int, v float64) float64) vector {
	out := make(vector, len(v))
	for i, s := range v {
		vals := make([]float64, len(s.v))
		for p, f1 := range s.v {
			if math.IsNaN(f1) {
				vals[p] = f1
				continue
			}
			vals[p] = f(p, f1)
		}
		ts := s.tags
		if drop {
			ts = dropName(ts)
		}
		out[i] = series{tags: ts, v: vals}
	}
	return out
}

// round is round(v, to_nearest=1): half rounds up, as Prometheus does
// (floor(v/to + 0.5) * to), computed through the inverse so that
// to_nearest=0.1 rounds to tenths without the error of dividing by 0.1.
func (x *run) round(c *parser.Call) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	to := x.constant(1)
	if len(c.Args) > 1 {
		if to, err = x.scalarArg(c.Args[1]); err != nil {
			return nil, err
		}
	}
	return mapValues(v, true, func(p int, f float64) float64 {
		inv := 1 / to[p]
		return math.Floor(f*inv+0.5) / inv
	}), nil
}

// clamp is clamp, clamp_min and clamp_max. The bounds are scalars, which
// may vary from point to point (clamp_max(x, scalar(y))), so they are
// evaluated into one value per point like any other argument.
func (x *run) clamp(c *parser.Call) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	args := make([]scalar, len(c.Args)-1)
	for i, a := range c.Args[1:] {
		if args[i], err = x.scalarArg(a); err != nil {
			return nil, err
		}
	}
	lo, hi := x.constant(math.Inf(-1)), x.constant(math.Inf(1))
	switch c.Func.Name {
	case "clamp":
		lo, hi = args[0], args[1]
	case "clamp_min":
		lo = args[0]
	case "clamp_max":
		hi = args[0]
	}
	return mapValues(v, true, func(p int, f float64) float64 {
		if hi[p] < lo[p] {
			return math.NaN() // clamp with max < min answers nothing
		}
		return math.Max(lo[p], math.Min(hi[p], f))
	}), nil
}

// scalar is the value of the only element of a vector, NaN when it has
// none or several at a point.
func (x *run) scalar(c *parser.Call) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	out := x.constant(math.NaN())
	for p := range out {
		n := 0
		for _, s := range v {
			if !math.IsNaN(s.v[p]) {
				n++
				out[p] = s.v[p]
			}
		}
		if n != 1 {
			out[p] = math.NaN()
		}
	}
	return out, nil
}

// absent is 1 where its argument has no element, tagged with the equality
// matchers of a selector argument.
func (x *run) absent(c *parser.Call) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	out := x.constant(1)
	for _, s := range v {
		for p, f := range s.v {
			if !math.IsNaN(f) {
				out[p] = math.NaN()
			}
		}
	}
	// The result carries the tags the selector pinned with equality, so
	// an alert on absent(up{job="api"}) says which job is missing; a label
	// named twice is ambiguous and left out, as Prometheus leaves it.
	ts := tags.Set{}
	if vs, ok := unparen(c.Args[0]).(*parser.VectorSelector); ok {
		seen := map[string]int{}
		for _, m := range vs.LabelMatchers {
			if m.Name != NameLabel {
				seen[m.Name]++
			}
		}
		for _, m := range vs.LabelMatchers {
			if m.Type == labels.MatchEqual && m.Name != NameLabel && seen[m.Name] == 1 {
				ts = append(ts, tags.Tag{Key: m.Name, Value: m.Value})
			}
		}
		ts = ts.Normalize()
	}
	return vector{{tags: ts, v: out}}, nil
}

// stringArg evaluates an argument that must be a string literal (the
// label names and patterns of label_replace and label_join).
func (x *run) stringArg(e parser.Expr) (string, error) {
	v, err := x.eval(e)
	if err != nil {
		return "", err
	}
	s, ok := v.(stringValue)
	if !ok {
		return "", badData("expected a string, got %s", e)
	}
	return string(s), nil
}

// labelReplace is label_replace(v, dst, replacement, src, regex).
func (x *run) labelReplace(c *parser.Call) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	var args [4]string
	for i := range args {
		if args[i], err = x.stringArg(c.Args[i+1]); err != nil {
			return nil, err
		}
	}
	dst, repl, src, pattern := StoreKey(args[0]), args[1], StoreKey(args[2]), args[3]
	// Prometheus anchors the pattern at both ends and lets . match a
	// newline; the same wrapping gives the same matches.
	re, err := regexp.Compile("^(?s:" + pattern + ")$")
	if err != nil {
		return nil, badData("invalid regular expression in label_replace(): %s", pattern)
	}
	if dst == "" {
		return nil, badData("invalid destination label name in label_replace(): %q", args[0])
	}
	out := make(vector, len(v))
	for i, s := range v {
		val, _ := s.tags.Get(src)
		ts := s.tags
		if m := re.FindStringSubmatchIndex(val); m != nil {
			res := string(re.ExpandString(nil, repl, val, m))
			ts = setTag(ts, dst, res)
		}
		out[i] = series{tags: ts, v: s.v}
	}
	return out, nil
}

// labelJoin is label_join(v, dst, separator, src...).
func (x *run) labelJoin(c *parser.Call) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	strs := make([]string, len(c.Args)-1)
	for i, a := range c.Args[1:] {
		if strs[i], err = x.stringArg(a); err != nil {
			return nil, err
		}
	}
	dst, sep := StoreKey(strs[0]), strs[1]
	srcs := storeKeys(strs[2:])
	out := make(vector, len(v))
	for i, s := range v {
		parts := make([]string, len(srcs))
		for j, k := range srcs {
			parts[j], _ = s.tags.Get(k)
		}
		out[i] = series{tags: setTag(s.tags, dst, strings.Join(parts, sep)), v: s.v}
	}
	return out, nil
}

// setTag returns ts with key set to value, or removed when value is "".
func setTag(ts tags.Set, key, value string) tags.Set {
	out := slices.Clone(without(ts, key))
	if value != "" {
		out = append(out, tags.Tag{Key: key, Value: value})
	}
	return out.Normalize()
}

// sort orders a vector by its value at the last point; absent values last.
func (x *run) sort(c *parser.Call, desc bool) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	out := slices.Clone(v)
	p := x.n - 1
	slices.SortStableFunc(out, func(a, b series) int {
		va, vb := a.v[p], b.v[p]
		switch {
		case math.IsNaN(va) && math.IsNaN(vb):
			return 0
		case math.IsNaN(va):
			return 1
		case math.IsNaN(vb):
			return -1
		}
		if desc {
			va, vb = vb, va
		}
		switch {
		case va < vb:
			return -1
		case va > vb:
			return 1
		}
		return 0
	})
	return out, nil
}

// sortByLabel orders a vector by the values of the given tags, in turn.
func (x *run) sortByLabel(c *parser.Call, desc bool) (value, error) {
	v, err := x.vectorArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(c.Args)-1)
	for i, a := range c.Args[1:] {
		s, err := x.stringArg(a)
		if err != nil {
			return nil, err
		}
		keys[i] = StoreKey(s)
	}
	out := slices.Clone(v)
	slices.SortStableFunc(out, func(a, b series) int {
		for _, k := range keys {
			va, _ := a.tags.Get(k)
			vb, _ := b.tags.Get(k)
			if c := strings.Compare(va, vb); c != 0 {
				if desc {
					return -c
				}
				return c
			}
		}
		c := compareTags(a.tags, b.tags)
		if desc {
			return -c
		}
		return c
	})
	return out, nil
}

// rangeFunc is a function of a window of storage steps.
type rangeFunc func(w window, rangeMs int64, param float64) float64

var rangeFuncs = map[string]rangeFunc{
	"rate":               rate,
	"increase":           func(w window, r int64, _ float64) float64 { return increase(w, r) },
	"irate":              irate,
	"delta":              delta,
	"deriv":              deriv,
	"avg_over_time":      overTime(same, func(acc, v float64, n int) float64 { return acc + (v-acc)/float64(n) }),
	"min_over_time":      overTime(same, func(acc, v float64, _ int) float64 { return math.Min(acc, v) }),
	"max_over_time":      overTime(same, func(acc, v float64, _ int) float64 { return math.Max(acc, v) }),
	"sum_over_time":      overTime(same, func(acc, v float64, _ int) float64 { return acc + v }),
	"count_over_time":    overTime(func(float64) float64 { return 1 }, func(_, _ float64, n int) float64 { return float64(n) }),
	"last_over_time":     overTime(same, func(_, v float64, _ int) float64 { return v }),
	"quantile_over_time": func(w window, _ int64, q float64) float64 { return quantile(q, present(w.vals, nil)) },
}

// rangeFunc evaluates a function of a range selector per series and point.
func (x *run) rangeFunc(c *parser.Call, f rangeFunc) (value, error) {
	arg := c.Args[len(c.Args)-1]
	ms, ok := unparen(arg).(*parser.MatrixSelector)
	if !ok {
		return nil, badData("%s needs a range selector such as x[5m], got %s", c.Func.Name, arg)
	}
	param := x.constant(math.NaN())
	if len(c.Args) > 1 {
		var err error
		if param, err = x.scalarArg(c.Args[0]); err != nil {
			return nil, err
		}
	}
	r := ms.Range.Milliseconds()
	v, err := x.rangeVectors(ms, func(_ eval.Series, p int, w window) float64 { return f(w, r, param[p]) })
	if err != nil {
		return nil, err
	}
	if c.Func.Name != "last_over_time" {
		for i := range v {
			v[i].tags = dropName(v[i].tags)
		}
	}
	return v, nil
}

// present appends the present values of vals to dst.
func present(vals, dst []float64) []float64 {
	for _, v := range vals {
		if !math.IsNaN(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// same is the identity, the first step of the folds that start from the
// first value itself (min, max, last).
func same(v float64) float64 { return v }

// overTime folds the present values of a window: first makes the result
// of the first, next adds the n-th to the result so far. It does not
// allocate: it runs once per series and point.
func overTime(first func(float64) float64, next func(acc, v float64, n int) float64) rangeFunc {
	return func(w window, _ int64, _ float64) float64 {
		acc, n := math.NaN(), 0
		for _, v := range w.vals {
			if math.IsNaN(v) {
				continue
			}
			if n++; n == 1 {
				acc = first(v)
			} else {
				acc = next(acc, v, n)
			}
		}
		return acc
	}
}

// rate is the average stored rate over the window for counters and rates
// (stored as per-second rates); for a gauge holding a cumulative count,
// the increase between its first and last steps in the window (resets
// counted as Prometheus does) per second, without extrapolation.
func rate(w window, _ int64, _ float64) float64 {
	if !w.gauge {
		return meanOf(w.vals)
	}
	inc, first, last := gaugeIncrease(w)
	if first == last {
		return math.NaN()
	}
	return inc / (float64(last-first) / 1000)
}

// increase is the rate times the range in seconds.
func increase(w window, r int64) float64 {
	if !w.gauge {
		return rate(w, r, 0) * float64(r) / 1000
	}
	inc, first, last := gaugeIncrease(w)
	if first == last {
		return math.NaN()
	}
	return inc
}

// gaugeIncrease sums the increases between consecutive present steps,
// a drop counting as a reset to zero; first and last are the times of the
// first and last present steps.
func gaugeIncrease(w window) (inc float64, first, last int64) {
	prev := math.NaN()
	for k, v := range w.vals {
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(prev) {
			first = w.time(k)
		} else if v >= prev {
			inc += v - prev
		} else {
			inc += v
		}
		prev, last = v, w.time(k)
	}
	return inc, first, last
}

// irate is the last stored rate for counters and rates; for a gauge, the
// per-second increase between its last two present steps.
func irate(w window, _ int64, _ float64) float64 {
	var last, prev = -1, -1
	for k := len(w.vals) - 1; k >= 0; k-- {
		if math.IsNaN(w.vals[k]) {
			continue
		}
		if last < 0 {
			last = k
			if !w.gauge {
				return w.vals[k]
			}
			continue
		}
		prev = k
		break
	}
	if prev < 0 {
		return math.NaN()
	}
	d := w.vals[last] - w.vals[prev]
	if d < 0 {
		d = w.vals[last]
	}
	return d / (float64(w.time(last)-w.time(prev)) / 1000)
}

// delta is the last minus the first present value of a gauge in the
// window, without extrapolation; for counters and rates, the increase.
func delta(w window, r int64, _ float64) float64 {
	if !w.gauge {
		return increase(w, r)
	}
	first, last := -1, -1
	for k, v := range w.vals {
		if !math.IsNaN(v) {
			if first < 0 {
				first = k
			}
			last = k
		}
	}
	if first < 0 || first == last {
		return math.NaN()
	}
	return w.vals[last] - w.vals[first]
}

// deriv is the least-squares slope per second of the present values.
func deriv(w window, _ int64, _ float64) float64 {
	n := 0.0
	var sx, sy, sxx, sxy float64
	var t0 int64
	for k, v := range w.vals {
		if math.IsNaN(v) {
			continue
		}
		if n == 0 {
			t0 = w.time(k)
		}
		t := float64(w.time(k)-t0) / 1000
		n++
		sx += t
		sy += v
		sxx += t * t
		sxy += t * v
	}
	if n < 2 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// meanOf is the mean of the present values, NaN if none.
func meanOf(vals []float64) float64 {
	total, n := 0.0, 0
	for _, v := range vals {
		if !math.IsNaN(v) {
			total += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return total / float64(n)
}
