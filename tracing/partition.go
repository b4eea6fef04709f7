package tracing

// TracePartition returns the partition of a trace among n partitions of a
// cluster's span log: a stable hash (64-bit FNV-1a) of the id's 16 bytes,
// mod n, so that every span of a trace lands in one partition. n must be
// positive.
func TracePartition(id [16]byte, n int) int {
	h := uint64(14695981039346656037)
	for _, c := range id {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return int(h % uint64(n))
}
