package query

import (
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
)

// The facade's vocabulary. Parse, Exec and Engine speak in types that the
// layers below define; these aliases let a caller (the HTTP API, alerting,
// the live evaluator) write query.Style or query.Range and depend on the
// facade alone, while the layers stay free to move code between them. An
// alias is the same type, so values pass between the names freely.
type (
	// Style is a parsed presentation: an expression with its display
	// settings (legend, color, axis, ...), as Parse returns it.
	Style = expr.Style
	// Range is the evaluation window: [Start, End) at Step, Unix ms.
	Range = eval.Range
	// EvalOptions are the evaluator's limits and clock, for NewEngine.
	EvalOptions = eval.Options
	// Context is the stack a program left, as Exec returns it.
	Context = stack.Context
)
