// Package kafkalog is the log of Sextant's cluster mode: the record format
// (FORMAT.md), the ingest side that writes datapoints and spans to Kafka
// (Producer, a tsdb.Appender and a tracing.Writer), and the store side that
// applies the records of its partitions to the local stores (Consumer).
//
// Datapoints go to the topic <prefix>-metrics, partitioned by series
// (tags.PartitionOf), spans to <prefix>-spans, partitioned by trace id
// (tracing.TracePartition); both topics have the same number of
// partitions, and partition p of both belongs to the same store nodes.
//
// The Producer validates what the store would reject that an ingest node
// can know (a missing name, a timestamp too old or too far ahead by its own
// clock) and returns from Append and WriteTraces only after Kafka
// acknowledged every record with acks=all. When Kafka does not acknowledge
// in time it returns an error wrapping tsdb.ErrUnavailable (or
// tracing.ErrUnavailable), which the ingest handlers answer with 503 and
// Retry-After.
//
// The Consumer consumes the partitions it is assigned, applies their records
// through the same contracts (tsdb.Appender, tracing.Writer) and keeps, per
// partition, the offset of the next record to apply in a tsdb.KV, written
// only after the store returned (the data is durable). A time-series store
// that keeps marks (tsdb.MarkedAppender) gets the offset with the
// datapoints, in the same durable write, and a span store that keeps marks
// (tracing.MarkedWriter) gets it with the spans (the span records of a
// fetch merged into one bounded write) or exemplars. On start it resumes
// from the newer of the two, or from the log's start for a partition it
// never applied, so a datapoint or span is applied exactly once however
// the node died.
//
// The Producer is Kafka's idempotent producer: a batch the client sends
// again is dropped by the broker, so a record is in the log once.
// Only franz-go's types stay inside this package: callers see brokers as
// strings and partitions as ints.
package kafkalog
