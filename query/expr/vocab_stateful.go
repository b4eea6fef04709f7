package expr

import (
	"fmt"
	"strings"

	"github.com/sextant-dev/sextant/query/stack"
)

// StatefulVocabulary has operators whose output depends on earlier values
// of their input: delays, rolling windows and smoothing.
var StatefulVocabulary = &stack.Vocabulary{Name: "stateful", Deps: []*stack.Vocabulary{MathVocabulary}, Words: statefulWords()}

// MaxWindow bounds window sizes in datapoints (rolling windows, delays,
// DES training).
const MaxWindow = 100_000

// statefulWords builds the stateful vocabulary. Window sizes are bounded
// by MaxWindow when the word runs, so a typo of 1e9 is a parse error
// naming the word rather than an evaluation that allocates gigabytes.
func statefulWords() []*stack.Word {
	// window builds a word over the last n datapoints of its input. n
	// counts steps, not time: the same word covers more time on a
	// coarser graph, as in Atlas (asl.md §2.6).
	window := func(op StatefulOp, summary string, examples ...string) *stack.Word {
		return &stack.Word{
			Name: op.String(), In: params(tsOrStyle, param("n", stack.Int)), Out: "TimeSeriesExpr", Summary: summary,
			Examples: append(examples, "ERROR:name,sps,:eq,:sum,0"),
			Exec: func(c *stack.Context) error {
				n, _ := stack.ToInt(c.Pop())
				if n < 1 || n > MaxWindow {
					return fmt.Errorf("window size %d must be between 1 and %d", n, MaxWindow)
				}
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
					return &Stateful{Op: op, Expr: t, N: n}, nil
				})
			},
		}
	}
	// noArg builds a word whose state runs from the start of the
	// range (eval.Online carries it in live streams).
	noArg := func(op StatefulOp, summary string) *stack.Word {
		return &stack.Word{
			Name: op.String(), In: expr1, Out: "TimeSeriesExpr", Summary: summary,
			Examples: []string{"1", "name,requestsPerSecond,:eq,:sum,:per-step"},
			Exec: func(c *stack.Context) error {
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
					return &Stateful{Op: op, Expr: t}, nil
				})
			},
		}
	}
	des := func(op StatefulOp, summary string) *stack.Word {
		return &stack.Word{
			Name: op.String(), In: params(tsOrStyle, param("training", stack.Int), param("alpha", stack.Double), param("beta", stack.Double)),
			Out: "TimeSeriesExpr", Summary: summary,
			Examples: []string{"name,requestsPerSecond,:eq,:sum,5,0.1,0.5", "ERROR:name,requestsPerSecond,:eq,:sum,0,0.1,0.5"},
			Exec: func(c *stack.Context) error {
				beta, _ := stack.ToDouble(c.Pop())
				alpha, _ := stack.ToDouble(c.Pop())
				n, _ := stack.ToInt(c.Pop())
				if n < 1 || n > MaxWindow {
					return fmt.Errorf("training size %d must be between 1 and %d", n, MaxWindow)
				}
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
					return &Stateful{Op: op, Expr: t, N: n, Alpha: alpha, Beta: beta}, nil
				})
			},
		}
	}
	// desMacro builds Atlas's named DES presets; :named-rewrite shows
	// the preset's name in the label instead of its parameters.
	desMacro := func(name, params string, sliding bool) *stack.Word {
		word, what := ":des", "double exponential smoothing"
		if sliding {
			word, what = ":sdes", "sliding double exponential smoothing"
		}
		return &stack.Word{
			Name: name, In: expr1, Out: "TimeSeriesExpr",
			Summary:  fmt.Sprintf("Shorthand for %s,%s (%s).", params, word, what),
			Examples: []string{"42", "name,sps,:eq,:sum"},
			Body:     strings.Split(":dup,"+params+","+word+","+name+",:named-rewrite", ","),
		}
	}
	return []*stack.Word{
		window(OpDelay, "The value from n steps earlier (NaN until then).", "name,requestsPerSecond,:eq,:sum,5"),
		window(OpRollingCount, "How many of the last n values (this one included) are true: not NaN and not 0.", ":random,0.4,:gt,5"),
		window(OpRollingMin, "Minimum of the non-NaN values among the last n.", "name,sps,:eq,:sum,5"),
		window(OpRollingMax, "Maximum of the non-NaN values among the last n.", "name,sps,:eq,:sum,5"),
		window(OpRollingSum, "Sum of the non-NaN values among the last n; NaN if all are NaN.", "name,sps,:eq,:sum,5"),
		{
			Name: "rolling-mean", In: params(tsOrStyle, param("n", stack.Int), param("minNumValues", stack.Int)), Out: "TimeSeriesExpr",
			Summary:  "Mean of the non-NaN values among the last n, if at least minNumValues of them have a value.",
			Examples: []string{"name,sps,:eq,:sum,5,3", "ERROR:name,sps,:eq,:sum,3,5"},
			Exec: func(c *stack.Context) error {
				m, _ := stack.ToInt(c.Pop())
				n, _ := stack.ToInt(c.Pop())
				// minNumValues above n could never be met: a line of NaN
				// that looks like a gap in the data, so it is refused.
				if n < 1 || n > MaxWindow || m < 1 || m > n {
					return fmt.Errorf("rolling mean needs 1 <= minNumValues (%d) <= n (%d) <= %d", m, n, MaxWindow)
				}
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
					return &Stateful{Op: OpRollingMean, Expr: t, N: n, Min: m}, nil
				})
			},
		},
		des(OpDES, "Double exponential smoothing: a prediction line after training samples (alpha smooths the data, beta the trend)."),
		des(OpSDES, "Sliding DES: two DES alternate every training period so the prediction for a time does not depend on the graph start."),
		{
			Name: "trend", In: params(tsOrStyle, param("window", DurationT)), Out: "TimeSeriesExpr", Deprecated: true,
			Summary:  "Deprecated, use :rolling-mean. Moving average over a window of time; NaN counts as 0.",
			Examples: []string{":random,PT5M", ":random,20m"},
			Exec: func(c *stack.Context) error {
				// The input type (DurationT) already parsed the duration. The
				// window is time, unlike the rolling words: the evaluator turns it
				// into steps of the graph being drawn.
				w, _ := ParseDuration(c.Pop().(string))
				if w <= 0 {
					return fmt.Errorf("trend window %s must be positive", FormatDuration(w))
				}
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
					return &Stateful{Op: OpTrend, Expr: t, Window: w}, nil
				})
			},
		},
		noArg(OpIntegral, "Running sum from the start of the graph (NaN counts as 0); with :per-step, the count of events so far."),
		noArg(OpCumulativeMax, "Running maximum from the start of the graph."),
		noArg(OpDerivative, "Change from the previous value (NaN at the first point)."),
		desMacro("des-simple", "10,0.1,0.5", false),
		desMacro("des-fast", "10,0.1,0.02", false),
		desMacro("des-slower", "10,0.05,0.03", false),
		desMacro("des-slow", "10,0.03,0.04", false),
		desMacro("sdes-simple", "10,0.1,0.5", true),
		desMacro("sdes-fast", "10,0.1,0.02", true),
		desMacro("sdes-slower", "10,0.05,0.03", true),
		desMacro("sdes-slow", "10,0.03,0.04", true),
		{
			Name: "des-epic-signal",
			In: params(param("line", TimeSeriesT), param("training", stack.Int), param("alpha", stack.Double), param("beta", stack.Double),
				param("maxPercent", stack.Double), param("minPercent", stack.Double), param("noise", stack.Double)),
			Out:      "TimeSeriesExpr",
			Summary:  "1 where the line leaves both the noise and the percent bounds around its DES prediction, else 0 (legacy epic alerts).",
			Examples: []string{"name,sps,:eq,:sum,10,0.1,0.5,0.2,0.2,4"},
			// The legacy epic alert, step by step: store the parameters, predict
			// the line with :des, build a noise band (pred ± noise) and a percent
			// band (pred × (1 − minPercent), pred × (1 + maxPercent)), and signal
			// where the line is outside both bands on the same side. The
			// variables are what :des-epic-viz reads to draw the bands.
			Body: strings.Split("noise,:sset,minPercent,:sset,maxPercent,:sset,beta,:sset,alpha,:sset,trainingSize,:sset,line,:sset,"+
				"pred,line,:get,trainingSize,:get,alpha,:get,beta,:get,:des,:set,"+
				"minPredNoiseBound,pred,:get,noise,:get,:sub,:set,"+
				"minPredPercentBound,pred,:get,1.0,:const,minPercent,:get,:const,:fsub,:fmul,:set,"+
				"maxPredNoiseBound,pred,:get,noise,:get,:add,:set,"+
				"maxPredPercentBound,pred,:get,2.0,:const,1.0,:const,maxPercent,:get,:const,:fsub,:fsub,:fmul,:set,"+
				"line,:get,minPredNoiseBound,:get,:lt,line,:get,minPredPercentBound,:get,:lt,:and,"+
				"line,:get,maxPredNoiseBound,:get,:gt,line,:get,maxPredPercentBound,:get,:gt,:and,:or", ","),
		},
		{
			Name: "approx-distinct-cumulative", In: params(param("", DataT)), Out: "TimeSeriesExpr",
			Summary:  "Like :approx-distinct over the running maximum of each register: distinct count since the graph start.",
			Examples: []string{"name,uniqueUsers,:eq"},
			Exec: func(c *stack.Context) error {
				d, _ := asData(c.Pop())
				g, err := percentileGroup("approx-distinct-cumulative", d, DistinctKey)
				if err != nil {
					return err
				}
				// Registers combine by max across series; the cumulative form then
				// keeps each register's running max over time before estimating.
				g.Agg.Fn = Max
				return c.Push(&ApproxDistinct{Expr: g, Cumulative: true})
			},
		},
	}
}
