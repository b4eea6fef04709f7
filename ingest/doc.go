// Package ingest receives metrics and spans: the Atlas publish API (and
// Spectator's batch payload on the same path), OTLP over HTTP and gRPC,
// Prometheus remote write, SpectatorD's line protocol (UDP, a unix
// datagram socket and HTTP; the SpectatorD component owns those sockets
// and reports gauges every step) and Zipkin v2. It validates Atlas
// publish datapoints with Atlas's rules and everything else with one tag
// policy (TagPolicy: tags as sent, lengths and counts bounded, a bad
// series rejected alone), enforces size and count limits, sheds load with
// 429/503 and Retry-After instead of queueing without bound, and writes
// through tsdb.Appender. A reply that reports success means every accepted
// datapoint is durable, as the store promises.
//
// Decoding is allocation-conscious: the Atlas JSON decoder scans the body
// once and borrows strings from it, and every request's working space is
// pooled. Rejections are counted by protocol and reason
// (sextant.ingest.rejected) and named, the first few, in the reply.
package ingest
