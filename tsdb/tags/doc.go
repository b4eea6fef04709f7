// Package tags defines the identity of a time series and the predicates that
// select series.
//
// A series is identified solely by its tag map; the metric name is the tag
// "name". A Set is kept sorted by key so that equal maps have equal
// canonical encodings (Set.AppendTo), which the store hashes to find series
// without allocating.
//
// A Query is the tree built by the stack language's query words (:eq, :re,
// :in, :has, :lt ..., :and, :or, :not, :true, :false). Regexes are anchored at
// the start only, as in Atlas, and a regex with a literal prefix exposes that
// prefix so the index can scan a sorted range of values instead of all.
package tags
