package expr

import (
	"fmt"
	"slices"

	"github.com/sextant-dev/sextant/query/stack"
)

// FilterVocabulary selects lines: summary statistics, filters on them, and
// top/bottom k.
var FilterVocabulary = &stack.Vocabulary{Name: "filter", Deps: []*stack.Vocabulary{StatefulVocabulary}, Words: filterWords()}

// Stats are the summary statistics of a line over the graph range.
var Stats = []string{"avg", "max", "min", "last", "total", "count"}

// filterWords builds the filter vocabulary. The :stat-* words only make
// sense inside a :filter condition: they push a placeholder that :filter
// replaces with the statistic of the expression being filtered, which is
// how Atlas lets a condition say "lines whose max is above their average".
func filterWords() []*stack.Word {
	// statRef builds a :stat-* placeholder. It matches any stack: the
	// condition is often written before the expression it will refer
	// to is known to the word, and :filter resolves it afterwards.
	statRef := func(s string) *stack.Word {
		return &stack.Word{
			Name: "stat-" + s, Match: anyStack, Out: "TimeSeriesExpr",
			Summary:  fmt.Sprintf("Stands for %s,:stat of the filtered expression inside a :filter condition.", s),
			Examples: []string{"", "name,sps,:eq,:sum"},
			Exec:     func(c *stack.Context) error { return c.Push(&StatRef{Stat: s}) },
		}
	}
	words := []*stack.Word{
		{
			Name: "stat", In: params(tsOrStyle, param("stat", stack.String)), Out: "TimeSeriesExpr",
			Summary:  "A constant line per input line: its avg, max, min, last, total or count over the graph range.",
			Examples: []string{"name,sps,:eq,:sum,avg", "name,sps,:eq,:sum,max", "name,sps,:eq,:sum,last", "ERROR:name,sps,:eq,:sum,median"},
			Exec: func(c *stack.Context) error {
				s := c.Pop().(string)
				if !slices.Contains(Stats, s) {
					return fmt.Errorf("unknown statistic %q; use one of avg, max, min, last, total, count", s)
				}
				// A statistic is over the graph's whole range, NaN points not
				// counted (eval.Summarize): a constant line per input line.
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
					return &Stat{Expr: t, Stat: s}, nil
				})
			},
		},
	}
	for _, s := range Stats {
		words = append(words, statRef(s))
	}
	// The -mf forms are older Atlas spellings; kept so that saved
	// dashboards still parse.
	for _, s := range []string{"min", "max", "avg"} {
		words = append(words, &stack.Word{
			Name: "stat-" + s + "-mf", In: params(param("", TimeSeriesT)), Out: "TimeSeriesExpr",
			Summary:  fmt.Sprintf("Legacy shorthand for %s,:stat.", s),
			Examples: []string{"42"}, Body: []string{s, ":stat"},
		})
	}
	words = append(words, &stack.Word{
		Name: "filter", In: params(param("", TimeSeriesT), param("cond", TimeSeriesT)), Out: "TimeSeriesExpr",
		Summary: "Keep the lines whose condition is true (not NaN, not 0) at some step; " +
			":stat-* words in the condition stand for the lines' statistics.",
		Examples: []string{"name,sps,:eq,:sum,(,nf.cluster,),:by,:stat-max,30e3,:gt", "ERROR:name,sps,:eq,:sum,name,sps,:eq,(,nf.app,),:by"},
		Exec: func(c *stack.Context) error {
			// The placeholders are resolved against e before NewFilter checks
			// the groupings, so stat-max of a grouped e is grouped like it.
			cond := mustTS(c.Pop())
			e := mustTS(c.Pop())
			cond, err := resolveStats(e, cond)
			if err != nil {
				return err
			}
			f, err := NewFilter(e, cond)
			if err != nil {
				return err
			}
			return c.Push(f)
		},
	})
	// Ten words from one builder: :topk, :bottomk and their
	// -others-min/max/sum/avg variants, which add one line that
	// aggregates the lines left out.
	for _, bottom := range []bool{true, false} {
		for _, others := range []string{"", "min", "max", "sum", "avg"} {
			words = append(words, priorityWord(bottom, others))
		}
	}
	words = append(words, &stack.Word{
		Name: "consolidate", In: params(tsOrStyle, param("cf", stack.String), param("step", DurationT)), Out: "TimeSeriesExpr",
		Summary:  "Show an expression at a coarser step (a multiple of the graph step) with avg, sum, min or max.",
		Examples: []string{"name,sps,:eq,:sum,max,5m", "ERROR:name,sps,:eq,:sum,median,5m"},
		Exec: func(c *stack.Context) error {
			// Only the evaluation knows the graph's step: a step that is not
			// a multiple of it is rounded up to one there.
			step, _ := ParseDuration(c.Pop().(string))
			name := c.Pop().(string)
			cf, ok := map[string]CF{"avg": CFAvg, "sum": CFSum, "min": CFMin, "max": CFMax}[name]
			if !ok {
				return fmt.Errorf("unknown consolidation function %q; use avg, sum, min or max", name)
			}
			if step <= 0 {
				return fmt.Errorf("consolidation step must be positive")
			}
			return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
				return &Consolidate{Expr: t, CF: cf, Step: step}, nil
			})
		},
	})
	return words
}

// resolveStats replaces :stat-* placeholders in cond with the statistic of e.
func resolveStats(e, cond TimeSeriesExpr) (TimeSeriesExpr, error) {
	return Transform(cond, func(n TimeSeriesExpr) (TimeSeriesExpr, bool, error) {
		// Each placeholder becomes a Stat over the same e: shared, not
		// copied, since the AST is never modified in place (Transform).
		if r, ok := n.(*StatRef); ok {
			return &Stat{Expr: e, Stat: r.Stat}, true, nil
		}
		return nil, false, nil
	})
}

// priorityWord defines :topk and :bottomk and their -others- variants.
// Ranking needs each line's statistic over the whole range, so a live
// subscription ranks over the window it evaluates (one step, as Atlas'
// LWC does), not over a graph's longer range.
func priorityWord(bottom bool, others string) *stack.Word {
	name, what := "topk", "highest"
	if bottom {
		name, what = "bottomk", "lowest"
	}
	summary := fmt.Sprintf("Keep the k lines with the %s statistic (avg, max, min, last, total, count).", what)
	if others != "" {
		name += "-others-" + others
		summary = fmt.Sprintf("Like :%s, plus one line with the %s of the other lines (group keys set to --others--).",
			name[:len(name)-len("-others-"+others)], others)
	}
	return &stack.Word{
		Name: name, In: params(tsOrStyle, param("stat", stack.String), param("k", stack.Int)), Out: "TimeSeriesExpr",
		Summary:  summary,
		Examples: []string{"name,sps,:eq,:sum,(,nf.cluster,),:by,max,5", "ERROR:name,sps,:eq,:sum,(,nf.cluster,),:by,max,0"},
		Exec: func(c *stack.Context) error {
			k, _ := stack.ToInt(c.Pop())
			s := c.Pop().(string)
			if k <= 0 {
				return fmt.Errorf("k must be positive (%d <= 0)", k)
			}
			if !slices.Contains(Stats, s) {
				return fmt.Errorf("unknown statistic %q; use one of avg, max, min, last, total, count", s)
			}
			return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
				return &Priority{Expr: t, Stat: s, K: k, Bottom: bottom, Others: others}, nil
			})
		},
	}
}
