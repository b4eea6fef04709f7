// Package eval evaluates stack-language expressions (query/expr) over a
// step-aligned time range, reading data only through the tsdb contract.
//
// Evaluation has two phases. First every data expression of the tree
// becomes one tsdb.FetchRequest with its aggregation, group by and
// consolidation pushed down, so the store returns one line per group, not
// every series. Then the tree is walked bottom-up: each node turns the
// lines of its children into its own, with Atlas' NaN rules (asl.md §1.3)
// and join rules for binary operations (§2.5).
//
// Output point i of every line is at Range.Start + i*Range.Step and stands
// for the interval (t-step, t]. Stateful operators start empty at the
// range start. Limits (lines and datapoints held) bound memory; the store
// bounds what a fetch may scan; the caller's context bounds time.
package eval
