package expr

import (
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// QueryVocabulary builds tag queries.
var QueryVocabulary = &stack.Vocabulary{Name: "query", Deps: []*stack.Vocabulary{stack.Std}, Words: queryWords()}

// queryWords builds the query vocabulary: tag comparisons, regular
// expressions (compiled once when the word runs; tsdb/tags bounds the time
// of a backtracking match) and the boolean combinators. A query is a
// predicate on a series' tags; nothing here knows about time.
func queryWords() []*stack.Word {
	// kv is the input of the comparison words: a key and a value, the
	// value on top (name,sps,:eq).
	kv := params(param("k", stack.String), param("v", stack.String))
	// cmp builds a comparison that cannot fail: any key and value are a
	// valid query (an unknown key simply matches nothing).
	cmp := func(name, summary string, f func(k, v string) *tags.Query) *stack.Word {
		return &stack.Word{
			Name: name, In: kv, Out: "Query", Summary: summary,
			Examples: []string{"status,400", "ERROR:status"},
			Exec: func(c *stack.Context) error {
				v := c.Pop().(string)
				k := c.Pop().(string)
				return c.Push(f(k, v))
			},
		}
	}
	// re builds a regex word. The pattern is compiled here, so a bad one
	// is a parse error with its position; Java-only syntax (lookarounds)
	// compiles to the backtracking engine, whose time tsdb/tags bounds.
	re := func(name, summary string, f func(k, v string) (*tags.Query, error)) *stack.Word {
		return &stack.Word{
			Name: name, In: kv, Out: "Query", Summary: summary,
			Examples: []string{"nf.app,^www", "status,4(?!04)", "ERROR:nf.app,(unclosed"},
			Exec: func(c *stack.Context) error {
				v := c.Pop().(string)
				k := c.Pop().(string)
				q, err := f(k, v)
				if err != nil {
					return err
				}
				return c.Push(q)
			},
		}
	}
	// logic builds :and and :or. checkSize refuses a combination whose
	// tree, with shared subqueries expanded, exceeds the size limit: a
	// :dup loop doubles it at each step.
	logic := func(name, summary string, f func(a, b *tags.Query) *tags.Query) *stack.Word {
		return &stack.Word{
			Name: name, In: params(param("q1", QueryT), param("q2", QueryT)), Out: "Query", Summary: summary,
			Examples: []string{"name,sps,:eq,nf.app,www,:eq", ":true,:false", "ERROR:name,sps,:eq"},
			Exec: func(c *stack.Context) error {
				b := c.Pop().(*tags.Query)
				a := c.Pop().(*tags.Query)
				if err := checkSize(a, b); err != nil {
					return err
				}
				return c.Push(f(a, b))
			},
		}
	}
	return []*stack.Word{
		{
			Name: "true", Match: anyStack, Out: "Query", Summary: "Query that matches every time series.",
			Examples: []string{""},
			Exec:     func(c *stack.Context) error { return c.Push(tags.True()) },
		},
		{
			Name: "false", Match: anyStack, Out: "Query", Summary: "Query that matches nothing.",
			Examples: []string{""},
			Exec:     func(c *stack.Context) error { return c.Push(tags.False()) },
		},
		{
			Name: "has", In: params(param("k", stack.String)), Out: "Query",
			Summary: "Query for time series that have the key k.", Examples: []string{"nf.app", "ERROR:"},
			Exec: func(c *stack.Context) error { return c.Push(tags.Has(c.Pop().(string))) },
		},
		cmp("eq", "Query for time series where the value of k equals v.", tags.Eq),
		cmp("lt", "Query for values of k lexically less than v (strings: \"1000\" < \"2\").", tags.Lt),
		cmp("le", "Query for values of k lexically less than or equal to v.", tags.Le),
		cmp("gt", "Query for values of k lexically greater than v.", tags.Gt),
		cmp("ge", "Query for values of k lexically greater than or equal to v.", tags.Ge),
		re("re", "Query for values of k matching a regular expression, anchored at the start.", tags.Re),
		re("reic", "Like :re, ignoring case.", tags.ReIC),
		cmp("contains", "Query for values of k containing the string v.", tags.Contains),
		cmp("starts", "Query for values of k starting with v.", tags.Starts),
		cmp("ends", "Query for values of k ending with v.", tags.Ends),
		{
			Name: "in", In: params(param("k", stack.String), param("vs", stack.StringList)), Out: "Query",
			Summary: "Query for values of k equal to any value in a list.",
			// An empty list is a valid query that matches nothing.
			Examples: []string{"nf.app,(,www,api,)", "status,(,)", "ERROR:name,sps"},
			Exec: func(c *stack.Context) error {
				vs := c.Pop().(stack.List).Strings()
				return c.Push(tags.In(c.Pop().(string), vs))
			},
		},
		logic("and", "Query matching both queries.", tags.And),
		logic("or", "Query matching either query.", tags.Or),
		{
			Name: "not", In: params(param("q", QueryT)), Out: "Query",
			// A negation matches series that lack the key, as Atlas's
			// :not does: the complement of the matching set.
			Summary:  "Query matching what q does not; series without q's key match k,v,:eq,:not.",
			Examples: []string{"name,sps,:eq", "ERROR:sps"},
			Exec:     func(c *stack.Context) error { return c.Push(tags.Not(c.Pop().(*tags.Query))) },
		},
	}
}
