package spanstore

import (
	"testing"
	"time"
)

// FuzzDecode: any bytes read back as a block, digests or trace entry
// decode or fail with an error; never a panic or a huge allocation.
func FuzzDecode(f *testing.F) {
	w := new(blockWriter)
	w.encode(build(
		spec{trace: 1, span: 1, service: "frontend", name: "GET /", start: 0, dur: time.Millisecond, attrs: map[string]any{"a": "b", "n": 1, "f": 0.5, "t": true}},
		spec{trace: 1, span: 2, parent: 1, service: "catalog", name: "SELECT", start: time.Millisecond, dur: time.Millisecond},
	))
	f.Add(append([]byte(nil), w.assemble()...))
	f.Add(appendDigests(nil, w, []int32{0, 1}, 0))
	f.Add([]byte{})
	f.Add([]byte{blockVersion, 0, 0})
	f.Add([]byte{blockVersion, 1, 1, 'x', 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if blk, err := decodeBlock(b); err == nil {
			for i := range min(blk.len(), 64) {
				blk.span(i)
			}
		}
		decodeDigests(nil, b, 0)
		decodeTraceEntry(1, b)
	})
}
