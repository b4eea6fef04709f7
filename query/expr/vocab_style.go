package expr

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sextant-dev/sextant/query/stack"
)

// StyleVocabulary sets presentation: legends, colors, line styles, axes,
// sorting and limits. Style words wrap an expression without changing its
// values.
var StyleVocabulary = &stack.Vocabulary{Name: "style", Deps: []*stack.Vocabulary{FilterVocabulary}, Words: styleWords()}

// LineStyles are the values of :ls.
var LineStyles = []string{"line", "area", "stack", "vspan", "heatmap"}

// SortKeys are the values of :sort.
var SortKeys = []string{"legend", "min", "max", "avg", "count", "total", "last"}

// MaxAxes is the number of y axes a chart may use.
const MaxAxes = 5

// NamedColors are the color names :color accepts besides hex values.
var NamedColors = map[string]string{
	"red": "ff0000", "green": "00ff00", "blue": "0000ff", "yellow": "ffff00", "orange": "ffa500",
	"purple": "800080", "pink": "ffc0cb", "cyan": "00ffff", "magenta": "ff00ff", "brown": "a52a2a",
	"black": "000000", "white": "ffffff", "gray": "808080", "grey": "808080", "lightgray": "d3d3d3",
	"darkgray": "a9a9a9", "navy": "000080", "teal": "008080", "olive": "808000", "maroon": "800000",
}

// hexColor matches the hex forms Atlas's color parser takes: RGB
// shorthand, RRGGBB, or AARRGGBB with the alpha first.
var hexColor = regexp.MustCompile(`^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$`)

// ParseColor returns a color as 8 hex digits AARRGGBB.
func ParseColor(s string) (string, error) {
	// A name is opaque; so are the forms without alpha ("ff" prefix),
	// which keeps every stored color the same 8-digit shape.
	if h, ok := NamedColors[strings.ToLower(s)]; ok {
		return "ff" + h, nil
	}
	if !hexColor.MatchString(s) {
		return "", fmt.Errorf("invalid color %q: want RGB, RRGGBB, AARRGGBB hex or a name such as red", s)
	}
	s = strings.ToLower(s)
	switch len(s) {
	case 3:
		return "ff" + string([]byte{s[0], s[0], s[1], s[1], s[2], s[2]}), nil
	case 6:
		return "ff" + s, nil
	}
	return s, nil
}

// styleWords builds the presentation vocabulary. Style words never touch
// values: they wrap the expression in a Style whose settings the graph
// API reads (legend, colour, axis, line style) and whose :limit and :sort
// it applies to the evaluated lines.
func styleWords() []*stack.Word {
	// set builds a word that validates one string and records it as a
	// setting: the value is checked when the program runs, so a bad
	// color or axis is a parse error with its position, not a chart
	// that silently ignores it.
	set := func(key, summary string, validate func(string) error, examples ...string) *stack.Word {
		return &stack.Word{
			Name: key, In: params(param("", PresentT), param("v", stack.String)), Out: "StyleExpr", Summary: summary,
			Examples: examples,
			Exec: func(c *stack.Context) error {
				v := c.Pop().(string)
				if validate != nil {
					if err := validate(v); err != nil {
						return err
					}
				}
				s, _ := AsStyle(c.Pop())
				return c.Push(s.with(key, v))
			},
		}
	}
	// oneOf is a validator for a closed set of values, naming them in
	// the error so the user sees the choices.
	oneOf := func(what string, vs []string) func(string) error {
		return func(v string) error {
			if !slices.Contains(vs, v) {
				return fmt.Errorf("invalid %s %q; use one of %s", what, v, strings.Join(vs, ", "))
			}
			return nil
		}
	}
	// lsMacro is a shorthand word for one line style (:area is area,:ls).
	lsMacro := func(ls, summary string, example string) *stack.Word {
		return &stack.Word{
			Name: ls, In: params(param("", PresentT)), Out: "StyleExpr", Summary: summary,
			Examples: []string{example}, Body: []string{ls, ":ls"},
		}
	}
	return []*stack.Word{
		set("legend", "Set the legend text; $key or $(key) is replaced by the line's tag value (atlas.offset for the time shift).", nil,
			"name,sps,:eq,(,name,),:by,$name", "name,sps,:eq,(,nf.cluster,),:by,cluster+$nf.cluster", "name,sps,:eq,:sum,1w,:offset,$(name)+$(atlas.offset)"),
		{
			Name: "decode", In: params(param("", PresentT), param("encoding", stack.String)), Out: "StyleExpr",
			Summary:  "Decode the legend: hex turns _XX sequences back into characters; none leaves it.",
			Examples: []string{"1,one_21_25_26_3F,:legend,hex", "ERROR:1,base64"},
			Exec: func(c *stack.Context) error {
				v := c.Pop().(string)
				if v != "hex" && v != "none" {
					return fmt.Errorf("invalid decoding %q; use hex or none", v)
				}
				s, _ := AsStyle(c.Pop())
				// The legend transformations (:decode, :s) are kept as program
				// text, in order, and run on each line's label after :legend
				// expanded it (query's applySettings): they need the line's tags.
				return c.Push(s.appendSed(v + ",:decode"))
			},
		},
		{
			Name: "s", In: params(param("", PresentT), param("search", stack.String), param("replace", stack.String)), Out: "StyleExpr",
			Summary:  "Search and replace in the legend with a regular expression; $1 or $name refer to groups.",
			Examples: []string{"name,sps,:eq,(,nf.cluster,),:by,$nf.cluster,:legend,^nccp-(.*)$,$1", "ERROR:1,(unclosed,x"},
			Exec: func(c *stack.Context) error {
				r := c.Pop().(string)
				s := c.Pop().(string)
				// Compiled here only to reject a bad pattern at parse time; the
				// facade compiles it again when it rewrites the legends.
				if _, err := regexp.Compile(s); err != nil {
					return fmt.Errorf("invalid search pattern %q: %w", s, err)
				}
				st, _ := AsStyle(c.Pop())
				return c.Push(st.appendSed(stack.Escape(s) + "," + stack.Escape(r) + ",:s"))
			},
		},
		set("axis", fmt.Sprintf("Put the line on y axis n (0 to %d).", MaxAxes-1), func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n >= MaxAxes {
				return fmt.Errorf("invalid axis %q; use 0 to %d", v, MaxAxes-1)
			}
			return nil
		}, "name,sps,:eq,:sum,1", "ERROR:name,sps,:eq,:sum,9"),
		{
			Name: "offset", In: params(param("", PresentT), param("offsets", stack.StringList)), Out: "StyleExpr", Deprecated: true,
			Summary:  "Legacy: one copy of the expression per time shift in the list (prefer d,:offset).",
			Examples: []string{"name,sps,:eq,:sum,(,0h,1d,1w,)", "ERROR:name,sps,:eq,:sum,(,soon,)"},
			Exec: func(c *stack.Context) error {
				// The facade evaluates one copy of the expression per shift
				// (evalStyle); $atlas.offset in the legend tells them apart.
				l := c.Pop().(stack.List).Strings()
				for _, d := range l {
					if _, err := ParseDuration(d); err != nil {
						return err
					}
				}
				s, _ := AsStyle(c.Pop())
				return c.Push(s.with("offset", listString(l)))
			},
		},
		{
			Name: "filter", Out: "StyleExpr", In: params(param("", StyleT), param("cond", TimeSeriesT)),
			Summary:  "Filter after presentation settings: like :filter on the styled expression.",
			Examples: []string{"name,sps,:eq,:sum,(,nf.cluster,),:by,$nf.cluster,:legend,:stat-max,30e3,:gt"},
			Exec: func(c *stack.Context) error {
				cond := mustTS(c.Pop())
				s := c.Pop().(*Style)
				// :stat-max and friends in the condition stand for the
				// styled expression's own statistics (asl.md §2.7).
				cond, err := resolveStats(s.Expr, cond)
				if err != nil {
					return err
				}
				f, err := NewFilter(s.Expr, cond)
				if err != nil {
					return err
				}
				return c.Push(s.withExpr(f))
			},
		},
		set("sort", "Sort the lines of the expression in the legend by legend text or a statistic.", oneOf("sort", SortKeys),
			"name,sps,:eq,:sum,(,nf.cluster,),:by,max", "ERROR:name,sps,:eq,:sum,(,nf.cluster,),:by,median"),
		set("order", "Sort order: asc (default) or desc.", oneOf("order", []string{"asc", "desc"}),
			"name,sps,:eq,:sum,(,nf.cluster,),:by,desc", "ERROR:name,sps,:eq,:sum,up"),
		set("limit", "Keep only the first n lines, in sort order.", func(v string) error {
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				return fmt.Errorf("invalid limit %q; use a positive integer", v)
			}
			return nil
		}, "name,sps,:eq,:sum,(,nf.cluster,),:by,3", "ERROR:name,sps,:eq,:sum,(,nf.cluster,),:by,0"),
		{Name: "head", In: params(param("", PresentT), param("n", stack.String)), Out: "StyleExpr", Body: []string{":limit"},
			Summary: "Same as :limit.", Examples: []string{"name,sps,:eq,(,nf.cluster,),:by,2"}},
		{
			Name: "alpha", In: params(param("", PresentT), param("aa", stack.String)), Out: "StyleExpr",
			Summary:  "Set the opacity as two hex digits, 00 transparent to ff opaque (merged into :color if set).",
			Examples: []string{"name,sps,:eq,:sum,:stack,40", "name,sps,:eq,:sum,f00,:color,40", "ERROR:name,sps,:eq,:sum,zz"},
			Exec: func(c *stack.Context) error {
				a := c.Pop().(string)
				if len(a) != 2 || !hexColor.MatchString(a+"0") {
					return fmt.Errorf("invalid alpha %q; use two hex digits such as 40", a)
				}
				s, _ := AsStyle(c.Pop())
				// With a color already set, the alpha goes into it (AARRGGBB)
				// and the separate setting is dropped, so the two cannot
				// disagree.
				if col, ok := s.Get("color"); ok {
					full, _ := ParseColor(col)
					return c.Push(s.with("color", strings.ToLower(a)+full[2:], "alpha"))
				}
				return c.Push(s.with("alpha", strings.ToLower(a)))
			},
		},
		set("color", "Set the line color: RGB, RRGGBB or AARRGGBB hex, or a name such as red.", func(v string) error {
			_, err := ParseColor(v)
			return err
		}, "name,sps,:eq,:sum,ff0000", "name,sps,:eq,:sum,f00", "ERROR:name,sps,:eq,:sum,nocolor"),
		{
			Name: "palette", In: params(param("", PresentT), param("palette", Type3)), Out: "StyleExpr",
			Summary:  "Color the lines of this expression from a named palette (armytage, reds, greens, blues ...) or a list of colors.",
			Examples: []string{"name,sps,:eq,:sum,reds", "name,sps,:eq,:sum,(,nf.cluster,),:by,(,1a9850,91cf60,d73027,)"},
			Exec: func(c *stack.Context) error {
				var v string
				switch p := c.Pop().(type) {
				case string:
					v = p
				case stack.List:
					cs := p.Strings()
					for _, col := range cs {
						if _, err := ParseColor(col); err != nil {
							return err
						}
					}
					v = listString(cs)
				}
				s, _ := AsStyle(c.Pop())
				// A palette replaces a fixed color and its alpha: each line
				// takes the palette's next color instead.
				return c.Push(s.with("palette", v, "color", "alpha"))
			},
		},
		set("ls", "Set the line style: line, area, stack, vspan or heatmap.", oneOf("line style", LineStyles),
			"name,sps,:eq,:sum,(,name,),:by,area", "ERROR:name,sps,:eq,:sum,dotted"),
		set("lw", "Set the line width in pixels.", func(v string) error {
			if f, err := strconv.ParseFloat(v, 64); err != nil || f <= 0 || f > 100 {
				return fmt.Errorf("invalid line width %q; use a number between 0 and 100", v)
			}
			return nil
		}, "name,sps,:eq,:sum,2", "ERROR:name,sps,:eq,:sum,wide"),
		lsMacro("area", "Fill the area between the line and 0.", "name,sps,:eq,:sum"),
		lsMacro("line", "Draw a plain line (the default).", "name,sps,:eq,:sum"),
		lsMacro("stack", "Stack the filled area on the previous stacked lines of the axis.", "name,sps,:eq,(,nf.cluster,),:by"),
		lsMacro("heatmap", "Draw the lines as a heatmap of their values over time.", "name,sps,:eq,(,nf.cluster,),:by"),
		lsMacro("vspan", "Draw non-zero datapoints as vertical spans.", "name,sps,:eq,:sum,:dup,200e3,:gt"),
		{
			Name: "percentiles-heatmap", In: params(param("", PresentT)), Out: "StyleExpr",
			Summary:  "Heatmap of the percentile buckets of a percentile timer or distribution summary.",
			Examples: []string{"name,requestLatency,:eq"},
			// Grouping by the bucket key keeps one line per bucket: the rows
			// of the heatmap.
			Body: []string{"(", PercentileKey, ")", ":cg", "heatmap", ":ls"},
		},
		{
			Name: "des-epic-viz",
			In: params(param("line", TimeSeriesT), param("training", stack.Int), param("alpha", stack.Double), param("beta", stack.Double),
				param("maxPercent", stack.Double), param("minPercent", stack.Double), param("noise", stack.Double)),
			Out:      "StyleExpr...",
			Summary:  "Chart an epic DES alert: the trigger as spans, the line and the four bounds.",
			Examples: []string{"name,sps,:eq,:sum,10,0.1,0.5,0.2,0.2,4"},
			// The signal macro leaves the trigger line and sets variables
			// for the line and its bounds; the body shows each in turn.
			Body: strings.Split(":des-epic-signal,:vspan,40,:alpha,triggered,:legend,"+
				"line,:get,line,:legend,minPredNoiseBound,:get,minPredNoiseBound,:legend,"+
				"minPredPercentBound,:get,minPredPercentBound,:legend,maxPredNoiseBound,:get,maxPredNoiseBound,:legend,"+
				"maxPredPercentBound,:get,maxPredPercentBound,:legend", ","),
		},
		{
			Name: "strip-style", In: params(param("", PresentT)), Out: "TimeSeriesExpr",
			Summary:  "Drop presentation settings, keeping the expression.",
			Examples: []string{"name,sps,:eq,:sum,red,:color"},
			Exec: func(c *stack.Context) error {
				s, _ := AsStyle(c.Pop())
				return c.Push(s.Expr)
			},
		},
	}
}

// Type3 is a string or a list of strings.
var Type3 = stack.Type{Name: "String|List", Match: func(v any) bool {
	_, ok := v.(string)
	return ok || stack.StringList.Match(v)
}}

// appendSed adds a legend transformation (program text) to the style.
// Atlas keeps the transformations in one "sed" setting, applied
// left to right; a second :s adds to the first rather than
// replacing it.
func (s *Style) appendSed(t string) *Style {
	if prev, ok := s.Get("sed"); ok {
		t = prev + "," + t
	}
	return s.with("sed", t)
}
