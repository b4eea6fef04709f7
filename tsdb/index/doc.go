// Package index is the inverted index of the store: tag key → value →
// postings (the IDs of the series with that tag).
//
// Postings are sorted slices while small and roaring bitmaps once large, so
// that keys whose values each have a handful of series (instance ids) stay
// cheap. Each key also keeps the postings of all series having it, which
// answers :has and :not, and a lazily sorted list of its values, which
// answers regexes with a literal prefix and the lexical comparisons by
// scanning only a range. Select evaluates a whole tags.Query to a bitmap;
// Keys, Values and Group serve the tags API and grouped aggregation.
//
// IDs are the store's 32-bit series IDs; the head owns the mapping to
// series. The index keeps no per-series data besides postings.
package index
