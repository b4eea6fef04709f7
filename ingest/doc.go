// Package ingest receives metrics: the Atlas publish API, OTLP over HTTP and
// gRPC, and Prometheus remote write. It validates every datapoint with
// Atlas's publish rules, enforces size and count limits, sheds load with
// 429/503 and Retry-After instead of queueing without bound, and writes
// through tsdb.Appender. A reply that reports success means every accepted
// datapoint is durable, as the store promises.
//
// Decoding is allocation-conscious: the Atlas JSON decoder scans the body
// once and borrows strings from it, and every request's working space is
// pooled. Rejections are counted by protocol and reason
// (sextant.ingest.rejected) and named, the first few, in the reply.
package ingest
