package kafkalog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
)

// FuzzDecode: any bytes decode to datapoints, spans or ErrCorrupt, without
// a panic; datapoints that decode encode back to the same record.
func FuzzDecode(f *testing.F) {
	f.Add(AppendDatapoints(nil, testPoints()))
	f.Add(AppendDatapoints(nil, nil))
	if rec, err := AppendSpans(nil, testTraces(3)); err == nil {
		f.Add(rec)
	}
	f.Add(AppendExemplars(nil, testExemplars(2)))
	f.Add([]byte{Version, byte(KindDatapoints), 0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{Version, byte(KindDatapoints), 0, 0, 0, 1, 6, 4, 'n', 'a', 'm', 'e', 0, 2, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		decodeCheck(t, rec)
		// The same bytes with a valid checksum, so the fuzzer explores
		// the body's decoder rather than only the checksum.
		decodeCheck(t, binary.BigEndian.AppendUint32(rec[:len(rec):len(rec)], crc32.Checksum(rec, castagnoli)))
	})
}

func decodeCheck(t *testing.T, rec []byte) {
	if ex, err := DecodeExemplars(rec); err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeExemplars: %v is not ErrCorrupt", err)
	} else if err == nil {
		if again := AppendExemplars(nil, ex); !bytes.Equal(again, rec) {
			t.Fatalf("re-encoded exemplars record differs:\n%x\n%x", again, rec)
		}
	}
	var b tsdb.Batch
	err := DecodeDatapoints(rec, &b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeDatapoints: %v is not ErrCorrupt", err)
		}
		if _, serr := DecodeSpans(rec); serr != nil && !errors.Is(serr, ErrCorrupt) {
			t.Fatalf("DecodeSpans: %v is not ErrCorrupt", serr)
		}
		return
	}
	if again := AppendDatapoints(nil, b.Points); !bytes.Equal(again, rec) {
		t.Fatalf("re-encoded record differs:\n%x\n%x", again, rec)
	}
}
