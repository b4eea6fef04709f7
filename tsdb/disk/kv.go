package disk

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-dev/sextant/tsdb"
)

// kindKV prefixes the records of the server's small key/value store
// (FORMAT.md): dashboards, alert rules and state, silences, canary runs.
const kindKV = 0x05

// KV is the tsdb.KV kept in the store's Pebble, under keys 0x05 key.
type KV struct{ d *Disk }

// KV returns the key/value store kept beside the time series.
func (d *Disk) KV() *KV { return &KV{d: d} }

var _ tsdb.KV = (*KV)(nil)

func kvKey(key string) []byte {
	k := make([]byte, 0, 1+len(key))
	return append(append(k, kindKV), key...)
}

// Get returns a copy of key's value, or tsdb.ErrNotFound.
func (kv *KV) Get(_ context.Context, key string) (_ []byte, err error) {
	if err := kv.d.Err(); err != nil {
		return nil, err
	}
	defer kv.d.trap.Recover(&err)
	v, closer, err := kv.d.db.Get(kvKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, tsdb.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", key, err)
	}
	out := append([]byte(nil), v...)
	return out, closer.Close()
}

// Put sets key to value and syncs; nil deletes key.
func (kv *KV) Put(_ context.Context, key string, value []byte) (err error) {
	if err := kv.d.Err(); err != nil {
		return err
	}
	defer kv.d.trap.Recover(&err)
	if value == nil {
		err = kv.d.db.Delete(kvKey(key), pebble.Sync)
	} else {
		err = kv.d.db.Set(kvKey(key), value, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", key, err)
	}
	return nil
}

// Scan calls fn for every key with prefix, in order.
func (kv *KV) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) (err error) {
	if err := kv.d.Err(); err != nil {
		return err
	}
	defer kv.d.trap.Recover(&err)
	lower := kvKey(prefix)
	return kv.d.scan(lower, prefixEnd(lower), func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(string(k[1:]), v)
	})
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
