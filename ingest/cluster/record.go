package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// recordVersion is the version of the heartbeat record's JSON layout;
// decoders reject other versions.
const recordVersion = 1

// maxIDLen bounds node ids and addresses in a heartbeat record.
const maxIDLen = 256

// maxPartitions bounds the partitions of a heartbeat record (and the
// partition numbers in it).
const maxPartitions = 1 << 16

// Role names, as --role spells them.
const (
	RoleIngest = "ingest"
	RoleStore  = "store"
	RoleQuery  = "query"
)

// record is one heartbeat of a node, the value of its key (the node id) in
// the members topic. Its JSON layout is documented in docs/cluster.md.
type record struct {
	Version    int              `json:"v"`
	ID         string           `json:"id"`
	Addr       string           `json:"addr"`
	Roles      []string         `json:"roles"`
	Time       int64            `json:"time"` // Unix milliseconds of the sender's clock
	Partitions []PartitionState `json:"partitions,omitempty"`
}

// PartitionState is how far a node is in one partition it consumes.
type PartitionState struct {
	// Partition is the partition number.
	Partition int `json:"partition"`
	// CaughtUp says the node serves the partition: its lag came within
	// Options.ServeLag and has not exceeded Options.MaxLag since.
	CaughtUp bool `json:"caughtUp"`
	// LagRecords is the number of records between what the node applied
	// and the log's end, summed over the data topics.
	LagRecords int64 `json:"lagRecords"`
	// LagSeconds is how far behind the log's end the node is in time (the
	// largest over the data topics); -1 when not yet known.
	LagSeconds float64 `json:"lagSeconds"`
}

// store says whether the record's node has the store role.
func (r *record) store() bool { return slices.Contains(r.Roles, RoleStore) }

// time returns the heartbeat's time.
func (r *record) time() time.Time { return time.UnixMilli(r.Time) }

// partition returns the node's state of partition p, if it reports p.
func (r *record) partition(p int) (PartitionState, bool) {
	for _, ps := range r.Partitions {
		if ps.Partition == p {
			return ps, true
		}
	}
	return PartitionState{}, false
}

// encodeRecord returns the record's bytes.
func encodeRecord(r record) []byte {
	r.Version = recordVersion
	b, err := json.Marshal(r)
	if err != nil {
		panic("BUG: encode heartbeat record: " + err.Error())
	}
	return b
}

// errRecord marks a heartbeat record that cannot be decoded.
var errRecord = errors.New("cluster: bad heartbeat record")

// decodeRecord decodes and checks a heartbeat record of node key.
func decodeRecord(key string, b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("%w: %v", errRecord, err)
	}
	switch {
	case r.Version != recordVersion:
		return record{}, fmt.Errorf("%w: version %d, want %d", errRecord, r.Version, recordVersion)
	case r.ID == "" || len(r.ID) > maxIDLen:
		return record{}, fmt.Errorf("%w: id of %d bytes", errRecord, len(r.ID))
	case r.ID != key:
		return record{}, fmt.Errorf("%w: id %q under key %q", errRecord, r.ID, key)
	case len(r.Addr) > maxIDLen:
		return record{}, fmt.Errorf("%w: addr of %d bytes", errRecord, len(r.Addr))
	case len(r.Roles) > 8:
		return record{}, fmt.Errorf("%w: %d roles", errRecord, len(r.Roles))
	case len(r.Partitions) > maxPartitions:
		return record{}, fmt.Errorf("%w: %d partitions", errRecord, len(r.Partitions))
	}
	for _, ps := range r.Partitions {
		if ps.Partition < 0 || ps.Partition >= maxPartitions {
			return record{}, fmt.Errorf("%w: partition %d", errRecord, ps.Partition)
		}
	}
	return r, nil
}
