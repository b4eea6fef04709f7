package wal

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func frame(recs ...string) []byte {
	var b []byte
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum([]byte(r), crcTable))
		b = append(b, r...)
	}
	return b
}

// FuzzScanRepair: any segment bytes scan without panicking; repairing
// them gives a segment that scans clean and keeps every valid record of
// the run before the first damage.
func FuzzScanRepair(f *testing.F) {
	good := frame("one", "two", "three")
	f.Add(good)
	f.Add(good[:len(good)-2])
	damaged := append([]byte(nil), good...)
	damaged[9] ^= 0xff
	f.Add(damaged)
	f.Add([]byte{})
	f.Add(make([]byte, 24))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		sc := scan(data)
		fixed, dmg, err := repairSegment("seg", data, -1)
		if err != nil {
			t.Fatalf("repairSegment: %v", err)
		}
		if (sc.bad >= 0) != (len(dmg) > 0) {
			t.Fatalf("scan bad=%d but %d damaged regions", sc.bad, len(dmg))
		}
		if len(dmg) == 0 {
			return
		}
		after := scan(fixed)
		if after.bad >= 0 {
			t.Fatalf("repaired segment still damaged at %d (%s)", after.bad, after.reason)
		}
		if len(after.records) < len(sc.records) {
			t.Fatalf("repair kept %d records, %d were valid before the damage", len(after.records), len(sc.records))
		}
	})
}
