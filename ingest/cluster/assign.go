package cluster

import (
	"hash/fnv"
	"slices"
	"strings"
)

// score is node id's rendezvous weight for partition p: an FNV-1a hash of
// the id and the partition, finished with splitmix64's mixer so that
// similar ids still spread evenly.
func score(id string, p int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{byte(p), byte(p >> 8), byte(p >> 16), byte(p >> 24)})
	x := h.Sum64()
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
	for _, id := range ids {
		scores = append(scores, scored{id, score(id, p)})
	}
	slices.SortFunc(scores, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	for i, s := range scores {
		ids[i] = s.id
	}
	return scores
}

// scored is an id with its weight for one partition.
type scored struct {
	id    string
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
