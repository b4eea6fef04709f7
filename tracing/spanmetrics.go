package tracing

// Span metrics are the time series ingest derives from every span (calls,
// errors and the duration distribution, per service, operation, kind and
// status), and exemplars are the slowest span behind each of their points.
// Ingest writes both, the span store keeps the exemplars, and the query API
// joins them to graph lines; the names they share live here, once, so that
// the three cannot drift apart.

// The names of the span-metrics series (the value of their name tag).
const (
	// MetricCalls is the rate of spans per second.
	MetricCalls = "span.calls"
	// MetricErrors is the rate of spans with an error status per second.
	MetricErrors = "span.errors"
	// MetricDuration is the span duration as a percentile timer: the
	// statistics count, totalTime (seconds per second), max (seconds) and
	// percentile (the T-buckets of lib).
	MetricDuration = "span.duration"
)

// The tags every span-metrics series and every exemplar carries besides
// name and statistic: the identity of the spans it aggregates.
const (
	// TagService is the span's service (its resource's service.name).
	TagService = "service.name"
	// TagOperation is the span's name, sanitized for a tag value.
	TagOperation = "operation"
	// TagSpanKind is the span's kind (server, client, ...).
	TagSpanKind = "span.kind"
	// TagStatusCode is the span's status (unset, ok, error).
	TagStatusCode = "status.code"
)

// SpanMetricNames returns the names of the span-metrics series, the
// series an Exemplar stands for, in a new slice the caller may keep.
func SpanMetricNames() []string {
	return []string{MetricDuration, MetricCalls, MetricErrors}
}
