package tags

// PartitionOf returns the partition, in [0, n), of the series s in a
// cluster whose log has n partitions: FNV-1a (64 bit) of s's canonical
// encoding (AppendTo) modulo n. Every node of a cluster must compute the
// same answer for the same set, so the function is part of the log's
// format (ingest/kafkalog/FORMAT.md) and never changes. s must be
// normalized (sorted, keys unique), as every stored set is. It allocates
// nothing. n <= 1 gives 0.
func PartitionOf(s Set, n int) int {
	if n <= 1 {
		return 0
	}
	return PartitionOfHash(Hash(s), n)
}

// Hash is FNV-1a (64 bit) of s's canonical encoding (AppendTo), without
// building the encoding: the hash PartitionOf reduces. It allocates
// nothing.
func Hash(s Set) uint64 {
	h := uint64(fnvOffset)
	for _, t := range s {
		h = fnvUvarint(h, uint64(len(t.Key)))
		h = fnvString(h, t.Key)
		h = fnvUvarint(h, uint64(len(t.Value)))
		h = fnvString(h, t.Value)
	}
	return h
}

// PartitionOfHash is PartitionOf for a set whose Hash is h, for callers
// that use the hash for something else too.
func PartitionOfHash(h uint64, n int) int {
	if n <= 1 {
		return 0
	}
	return int(h % uint64(n))
}

// FNV-1a, 64 bit (the constants of hash/fnv, written out so that the
// per-datapoint path allocates nothing).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// fnvUvarint hashes x as binary.AppendUvarint encodes it.
func fnvUvarint(h uint64, x uint64) uint64 {
	for x >= 0x80 {
		h ^= uint64(byte(x) | 0x80)
		h *= fnvPrime
		x >>= 7
	}
	h ^= x
	return h * fnvPrime
}

// PartitionOfEncoded is PartitionOf for a canonical encoding (AppendTo),
// without decoding it: the store filters series by partition with it.
func PartitionOfEncoded(enc []byte, n int) int {
	if n <= 1 {
		return 0
	}
	h := uint64(fnvOffset)
	for _, c := range enc {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return int(h % uint64(n))
}
