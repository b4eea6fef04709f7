package disk

import (
	"encoding/binary"
	"fmt"

	"github.com/sextant-dev/sextant/tsdb"
)

// kindMark prefixes the marks a checkpoint keeps (FORMAT.md): how far the
// store has applied each partition of a log (tsdb.Mark), consistent with
// the checkpointed series.
const kindMark = 0x06

// markKey is 0x06, uvarint len(log), log, uvarint partition.
func markKey(dst []byte, log string, partition int) []byte {
	dst = append(dst, kindMark)
	dst = binary.AppendUvarint(dst, uint64(len(log)))
	dst = append(dst, log...)
	return binary.AppendUvarint(dst, uint64(partition))
}

// SetMark records the mark of partition partition of log: every record
// before next is reflected in the checkpoint.
func (b *Batch) SetMark(log string, partition int, next int64) {
	b.key = markKey(b.key[:0], log, partition)
	b.b.Set(b.key, binary.BigEndian.AppendUint64(nil, uint64(next)), nil)
}

// Marks calls fn with every mark kept.
func (d *Disk) Marks(fn func(log string, partition int, next int64) error) error {
	return d.scan([]byte{kindMark}, []byte{kindMark + 1}, func(k, v []byte) error {
		rest := k[1:]
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) || len(v) != 8 {
			return fmt.Errorf("%w: bad mark record", tsdb.ErrCorrupt)
		}
		log := string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
		p, w := binary.Uvarint(rest)
		if w != len(rest) || p > 1<<31 {
			return fmt.Errorf("%w: bad mark record", tsdb.ErrCorrupt)
		}
		return fn(log, int(p), int64(binary.BigEndian.Uint64(v)))
	})
}
