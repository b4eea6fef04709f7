package expr

import "strconv"

// UnaryOp is the operation of a Unary node. Its String is the word that
// builds it, so a tree prints back as the program that parsed to it; the
// evaluator switches on the value, never on the word's spelling.
type UnaryOp uint8

// The unary operations.
const (
	OpAbs      UnaryOp = iota + 1 // :abs
	OpNeg                         // :neg
	OpSqrt                        // :sqrt
	OpSin                         // :sin
	OpPerStep                     // :per-step, a rate per second to an amount per step
	OpClampMin                    // :clamp-min, with Unary.Arg the minimum
	OpClampMax                    // :clamp-max, with Unary.Arg the maximum
)

// String returns the word of the operation, without its colon.
func (o UnaryOp) String() string {
	names := [...]string{"", "abs", "neg", "sqrt", "sin", "per-step", "clamp-min", "clamp-max"}
	if int(o) < len(names) && o != 0 {
		return names[o]
	}
	return "UnaryOp(" + strconv.Itoa(int(o)) + ")"
}

// BinaryOp is the operation of a Binary node. Its String is the word that
// builds it.
type BinaryOp uint8

// The binary operations. The plain arithmetic ones treat NaN as 0 when the
// other side has a value (Atlas's rule); the F-prefixed ones are IEEE.
const (
	OpAdd  BinaryOp = iota + 1 // :add
	OpSub                      // :sub
	OpMul                      // :mul
	OpDiv                      // :div, where 0/0 is 0
	OpPow                      // :pow
	OpGT                       // :gt
	OpGE                       // :ge
	OpLT                       // :lt
	OpLE                       // :le
	OpFAdd                     // :fadd
	OpFSub                     // :fsub
	OpFMul                     // :fmul
	OpFDiv                     // :fdiv
	OpAnd                      // :and
	OpOr                       // :or
)

// String returns the word of the operation, without its colon.
func (o BinaryOp) String() string {
	names := [...]string{"", "add", "sub", "mul", "div", "pow", "gt", "ge", "lt", "le", "fadd", "fsub", "fmul", "fdiv", "and", "or"}
	if int(o) < len(names) && o != 0 {
		return names[o]
	}
	return "BinaryOp(" + strconv.Itoa(int(o)) + ")"
}

// StatefulOp is the operation of a Stateful node: an online algorithm run
// over each line from the start of the range. Its String is the word that
// builds it.
type StatefulOp uint8

// The stateful operations, with the Stateful fields each one uses.
const (
	OpDelay         StatefulOp = iota + 1 // :delay, N
	OpRollingCount                        // :rolling-count, N
	OpRollingMin                          // :rolling-min, N
	OpRollingMax                          // :rolling-max, N
	OpRollingSum                          // :rolling-sum, N
	OpRollingMean                         // :rolling-mean, N and Min
	OpTrend                               // :trend, Window
	OpDES                                 // :des, N (training), Alpha, Beta
	OpSDES                                // :sdes, N (training), Alpha, Beta
	OpIntegral                            // :integral
	OpCumulativeMax                       // :cumulative-max
	OpDerivative                          // :derivative
)

// String returns the word of the operation, without its colon.
func (o StatefulOp) String() string {
	names := [...]string{"", "delay", "rolling-count", "rolling-min", "rolling-max", "rolling-sum", "rolling-mean",
		"trend", "des", "sdes", "integral", "cumulative-max", "derivative"}
	if int(o) < len(names) && o != 0 {
		return names[o]
	}
	return "StatefulOp(" + strconv.Itoa(int(o)) + ")"
}
