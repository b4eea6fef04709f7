package tags

// PartitionOf returns the partition of the series s among n partitions of
// a cluster's metric log: a stable hash (64-bit FNV-1a) of the canonical
// encoding (AppendTo), mod n. Every node computes the same answer, across
// versions and restarts. n must be positive.
func PartitionOf(s Set, n int) int {
	h := uint64(fnvOffset)
	for _, t := range s {
		h = fnvUvarint(h, uint64(len(t.Key)))
		h = fnvString(h, t.Key)
		h = fnvUvarint(h, uint64(len(t.Value)))
		h = fnvString(h, t.Value)
	}
	return int(h % uint64(n))
}

// PartitionOfEncoded is PartitionOf for a canonical encoding (AppendTo),
// without decoding it: the store filters series by partition with it.
func PartitionOfEncoded(enc []byte, n int) int {
	h := uint64(fnvOffset)
	for _, c := range enc {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return int(h % uint64(n))
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// fnvUvarint hashes x as binary.AppendUvarint encodes it, so that
// PartitionOf and PartitionOfEncoded agree without an allocation.
func fnvUvarint(h, x uint64) uint64 {
	for x >= 0x80 {
		h = (h ^ (x&0x7f | 0x80)) * fnvPrime
		x >>= 7
	}
	return (h ^ x) * fnvPrime
}
