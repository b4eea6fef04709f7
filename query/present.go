package query

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Engine evaluates presentations. It is safe for concurrent use.
type Engine struct {
	ev *eval.Evaluator
}

// NewEngine returns an engine reading from q.
func NewEngine(q tsdb.Querier, opts eval.Options) *Engine {
	return &Engine{ev: eval.New(q, opts)}
}

// Evaluator returns the engine's evaluator.
func (e *Engine) Evaluator() *eval.Evaluator { return e.ev }

// Line is one line of a chart: a series with its presentation.
type Line struct {
	eval.Series
	// Expr is the index of the presentation the line came from.
	Expr int
	// Style is that presentation's settings.
	Style *expr.Style
	// Settings resolved for drawing.
	Axis      int
	LineStyle string  // line, area, stack, vspan or heatmap
	Color     string  // AARRGGBB, "" for the palette's next color
	Alpha     string  // two hex digits, "" for opaque
	Width     float64 // stroke width in pixels
	Palette   string  // palette name or (,c1,c2,) list, "" for the axis palette
}

// Result is the outcome of an evaluation.
type Result struct {
	Lines []Line
	Stats eval.Stats
}

// Eval evaluates presentations over r: list offsets expand into one copy
// per shift, legends are resolved, and lines are sorted and limited per
// presentation.
func (e *Engine) Eval(ctx context.Context, styles []*expr.Style, r eval.Range) (*Result, error) {
	res := &Result{}
	for i, st := range styles {
		lines, err := e.evalStyle(ctx, st, r, &res.Stats)
		if err != nil {
			return nil, err
		}
		for j := range lines {
			lines[j].Expr = i
		}
		res.Lines = append(res.Lines, lines...)
	}
	return res, nil
}

// evalStyle evaluates one presentation. A list offset (:offset with a
// list, Atlas's week-over-week idiom) evaluates the expression once per
// shift; the copies share the presentation, and their legends tell them
// apart through $atlas.offset. Sorting and :limit apply to the lines of
// this presentation only, never across presentations, as in Atlas.
func (e *Engine) evalStyle(ctx context.Context, st *expr.Style, r eval.Range, stats *eval.Stats) ([]Line, error) {
	exprs := []expr.TimeSeriesExpr{st.Expr}
	if offs, ok := st.Get("offset"); ok {
		exprs = exprs[:0]
		for _, d := range parseList(offs) {
			ms, err := expr.ParseDuration(d)
			if err != nil {
				return nil, err
			}
			x, err := expr.WithOffset(st.Expr, ms)
			if err != nil {
				return nil, err
			}
			exprs = append(exprs, x)
		}
	}
	var series []eval.Series
	for _, x := range exprs {
		s, st1, err := e.ev.Eval(ctx, x, r)
		if err != nil {
			return nil, err
		}
		addStats(stats, st1)
		series = append(series, s...)
	}
	lines := make([]Line, len(series))
	for i, s := range series {
		l := Line{Series: s, Style: st, LineStyle: "line", Width: 1}
		if err := l.applySettings(st); err != nil {
			return nil, err
		}
		lines[i] = l
	}
	sortLines(lines, st)
	if lim, ok := st.Get("limit"); ok {
		if n, err := strconv.Atoi(lim); err == nil && n < len(lines) {
			lines = lines[:n]
		}
	}
	return lines, nil
}

// addStats adds the work of one evaluation to the total of a request, so
// the graph API can report (and limit) what the whole request cost.
func addStats(a *eval.Stats, b eval.Stats) {
	a.Fetches += b.Fetches
	a.SeriesScanned += b.SeriesScanned
	a.DatapointsScanned += b.DatapointsScanned
	a.InputLines += b.InputLines
	a.OutputLines += b.OutputLines
	a.FetchTime += b.FetchTime
}

// applySettings resolves the presentation's settings for one line, in the
// order they were set: a :legend followed by :s rewrites the legend the
// first produced, so the order of the words matters as it does in Atlas.
// The values were validated when the words ran, so the conversions here
// cannot fail on user input.
func (l *Line) applySettings(st *expr.Style) error {
	for _, s := range st.Settings {
		switch s.Key {
		case "legend":
			l.Label = Legend(s.Value, l.Tags, l.Offset)
		case "sed":
			out, err := applySed(s.Value, l.Label)
			if err != nil {
				return err
			}
			l.Label = out
		case "axis":
			l.Axis, _ = strconv.Atoi(s.Value)
		case "ls":
			l.LineStyle = s.Value
		case "lw":
			l.Width, _ = strconv.ParseFloat(s.Value, 64)
		case "color":
			l.Color, _ = expr.ParseColor(s.Value)
		case "alpha":
			l.Alpha = s.Value
		case "palette":
			l.Palette = s.Value
		}
	}
	return nil
}

// legendVar matches $name and $(name) in legends.
var legendVar = regexp.MustCompile(`\$\(([^)]*)\)|\$([-_.a-zA-Z0-9]+)`)

// Legend substitutes $key and $(key) with the line's tag values; an
// unknown key stays as its name, and atlas.offset is the time shift.
func Legend(pattern string, ts tags.Set, offset int64) string {
	return legendVar.ReplaceAllStringFunc(pattern, func(m string) string {
		k := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m, "$("), "$"), ")")
		if k == "atlas.offset" {
			return expr.FormatDuration(offset)
		}
		if v, ok := ts.Get(k); ok {
			return v
		}
		return k
	})
}

// applySed runs the legend transformations of :decode and :s in order.
func applySed(prog, label string) (string, error) {
	toks, err := stack.Tokenize(prog)
	if err != nil {
		return "", &eval.UserError{Msg: "legend transformation: " + err.Error()}
	}
	// The program is a sequence of "args...,:word" groups that the style
	// vocabulary recorded; collect arguments until a word consumes them.
	var args []string
	for _, t := range toks {
		switch t.Text {
		case ":decode":
			if len(args) >= 1 && args[len(args)-1] == "hex" {
				label = hexDecode(label)
			}
			args = args[:0]
		case ":s":
			if len(args) >= 2 {
				re, err := regexp.Compile(args[len(args)-2])
				if err != nil {
					return "", &eval.UserError{Msg: "legend search pattern: " + err.Error()}
				}
				label = re.ReplaceAllString(label, javaReplacement(args[len(args)-1]))
			}
			args = args[:0]
		default:
			args = append(args, stack.Unescape(t.Text))
		}
	}
	return label, nil
}

// javaReplacement turns $1 and $name references into Go's ${1} and ${name}.
func javaReplacement(r string) string { return groupRef.ReplaceAllString(r, "$${$1}") }

// groupRef matches a Java-style group reference in a replacement.
var groupRef = regexp.MustCompile(`\$([0-9]+|[a-zA-Z][a-zA-Z0-9]*)`)

// hexDecode turns _XX sequences into the byte XX; anything else stays.
func hexDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sortLines orders a presentation's lines by :sort and :order.
func sortLines(lines []Line, st *expr.Style) {
	by, ok := st.Get("sort")
	order, hasOrder := st.Get("order")
	if !ok && !hasOrder {
		return
	}
	if !ok {
		by = "legend"
	}
	desc := order == "desc"
	// The statistic of each line is computed once, not in every
	// comparison, and the lines are sorted through an index so that the
	// (large) Line values move once.
	stats := make([]float64, len(lines))
	if by != "legend" {
		for i, l := range lines {
			stats[i] = eval.Summarize(l.Values).Get(by)
		}
	}
	idx := make([]int, len(lines))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		var c int
		if by == "legend" {
			c = strings.Compare(lines[a].Label, lines[b].Label)
		} else {
			c = expr.CompareNaNLast(stats[a], stats[b])
		}
		if desc {
			c = -c
		}
		return c
	})
	sorted := make([]Line, len(lines))
	for i, j := range idx {
		sorted[i] = lines[j]
	}
	copy(lines, sorted)
}

// parseList reads a (,a,b,) list string.
func parseList(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "(,"), ",)")
	if s == "" || s == "(" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = stack.Unescape(strings.TrimSpace(p))
	}
	return parts
}
