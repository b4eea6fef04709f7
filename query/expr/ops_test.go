package expr_test

import (
	"testing"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
)

// TestOpsAreTheirWords builds a node with every operation's word and
// requires the node to carry that operation: the enum and the vocabulary
// agree, and String names the word.
func TestOpsAreTheirWords(t *testing.T) {
	t.Parallel()
	in := expr.NewInterpreter()
	top := func(prog string) any {
		t.Helper()
		c, err := in.Execute(prog, stack.Options{})
		if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		r := c.Result()
		return r[len(r)-1]
	}
	for op := expr.OpAdd; op <= expr.OpOr; op++ {
		prog := "name,a,:eq,:sum,name,b,:eq,:sum,:" + op.String()
		if b, ok := top(prog).(*expr.Binary); !ok || b.Op != op {
			t.Errorf("%s built %#v, want a Binary with op %v", prog, top(prog), op)
		}
	}
	for op := expr.OpAbs; op <= expr.OpClampMax; op++ {
		prog := "name,a,:eq,:" + op.String()
		if op == expr.OpClampMin || op == expr.OpClampMax {
			prog = "name,a,:eq,5,:" + op.String()
		}
		if u, ok := top(prog).(*expr.Unary); !ok || u.Op != op {
			t.Errorf("%s built %#v, want a Unary with op %v", prog, top(prog), op)
		}
	}
	for op := expr.OpDelay; op <= expr.OpDerivative; op++ {
		var prog string
		switch op {
		case expr.OpRollingMean:
			prog = "name,a,:eq,:sum,5,3,:" + op.String()
		case expr.OpTrend:
			prog = "name,a,:eq,:sum,5m,:" + op.String()
		case expr.OpDES, expr.OpSDES:
			prog = "name,a,:eq,:sum,5,0.1,0.5,:" + op.String()
		case expr.OpIntegral, expr.OpCumulativeMax, expr.OpDerivative:
			prog = "name,a,:eq,:sum,:" + op.String()
		default:
			prog = "name,a,:eq,:sum,5,:" + op.String()
		}
		if s, ok := top(prog).(*expr.Stateful); !ok || s.Op != op {
			t.Errorf("%s built %#v, want a Stateful with op %v", prog, top(prog), op)
		}
	}
	if got := expr.BinaryOp(0).String(); got != "BinaryOp(0)" {
		t.Errorf("BinaryOp(0).String() = %q", got)
	}
	if got := expr.UnaryOp(99).String(); got != "UnaryOp(99)" {
		t.Errorf("UnaryOp(99).String() = %q", got)
	}
}
