// Package partial marks, in a request's context, that an answer misses
// data. In cluster mode a query node reads each partition from the store
// nodes that own it; when none of them answers for a partition, the reader
// still answers with what the others said, and marks the request partial so
// that the HTTP layer flags the response (the X-Sextant-Partial header, a
// warning in the body) instead of returning a quietly wrong number.
//
// The marker is shared by the time-series and the span contracts (tsdb and
// tracing wrap it as tsdb.Partial and tracing.Partial), which may not
// import each other: it sits below both, in lib/, and uses the standard
// library only. One request carries one tracker, whichever contract's
// wrapper put it there, so a mark by a metrics reader and a mark by a span
// reader both reach the response.
//
// Who calls it: the HTTP middlewares (query/api, cmd/sextant's query node)
// put a tracker in each request's context with With; the fan-out readers
// (query/fanout) Mark it; the handlers ask Is before writing headers.
package partial
