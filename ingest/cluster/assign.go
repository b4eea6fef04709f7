package cluster

import (
	"cmp"
	"slices"
	"strings"
)

// score is node id's rendezvous weight for partition p: an FNV-1a hash of
// the id and the partition's four little-endian bytes, finished with
// splitmix64's mixer so that similar ids still spread evenly.
func score(id string, p int) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	x := uint64(offset64)
	for i := 0; i < len(id); i++ {
		x ^= uint64(id[i])
		x *= prime64
	}
	for _, b := range [4]byte{byte(p), byte(p >> 8), byte(p >> 16), byte(p >> 24)} {
		x ^= uint64(b)
		x *= prime64
	}
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rank orders ids for partition p by rendezvous weight, highest first
// (ties, which need a hash collision, by id). It sorts ids in place, using
// scores as scratch space (grown as needed and returned).
func rank(ids []string, p int, scores []scored) []scored {
	scores = scores[:0]
	for i, id := range ids {
		scores = append(scores, scored{i: i, score: score(id, p)})
	}
	slices.SortFunc(scores, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return strings.Compare(ids[a.i], ids[b.i])
	})
	sorted := make([]string, len(ids))
	for k, s := range scores {
		sorted[k] = ids[s.i]
	}
	copy(ids, sorted)
	return scores
}

// scored is a node (an index) with its weight for one partition.
type scored struct {
	i     int
	score uint64
}

// Assign returns the owners of partition p among the store nodes ids: the
// top r of their rendezvous ranking (all of them when there are fewer).
// Every node that knows the same ids computes the same owners, and adding
// or removing one node moves only the partitions it gains or loses. The
// caller keeps ids; the result is a new slice.
func Assign(ids []string, p, r int) []string {
	ranked := slices.Clone(ids)
	rank(ranked, p, nil)
	return ranked[:min(r, len(ranked))]
}
