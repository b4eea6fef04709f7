package tags

import "unsafe"

// BorrowString returns b's bytes as a string without copying. The string is
// only valid while b is neither modified nor reused: decoders use it to hand
// a request's tags to the store, which copies what it keeps (tsdb.Datapoint
// documents that tags are borrowed for the call). Never keep the result.
func BorrowString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	// Safe under the invariant above: the string aliases b's array, which the
	// caller keeps unchanged for as long as it uses the string.
	return unsafe.String(unsafe.SliceData(b), len(b))
}
