package tracing

// TracePartition returns the partition, in [0, n), of the trace id in a
// cluster whose log has n partitions: FNV-1a (64 bit) of the 16 bytes
// modulo n. All spans of a trace land in one partition, so one store node
// holds the whole trace. Part of the log's format
// (ingest/kafkalog/FORMAT.md): it never changes. n <= 1 gives 0.
func TracePartition(id [16]byte, n int) int {
	if n <= 1 {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, c := range id {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return int(h % uint64(n))
}
