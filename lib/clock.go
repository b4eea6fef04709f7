package lib

import "time"

// Clock tells the time. It is the one clock type of Sextant: the client
// library's Registry and Publisher, the span store and the HTTP APIs take a
// Clock in their Options, and the time-series store and ingest, which count
// time in Unix milliseconds, take its UnixMilli method value (a
// func() int64). A server built from one Clock therefore agrees with itself
// about what time it is, and a test controls all of it by passing one.
//
// The nil Clock is the system clock, so a zero Options works. Tests that
// drive time run inside testing/synctest, where the system clock is the
// bubble's fake one: they need no Clock at all unless they want to pin the
// time to a fixed instant.
type Clock func() time.Time

// Now returns the current time: c's, or the system clock's when c is nil.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// UnixMilli returns the current time in Unix milliseconds, the unit of the
// time-series store and of ingest: pass clock.UnixMilli where they take a
// func() int64.
func (c Clock) UnixMilli() int64 { return c.Now().UnixMilli() }

// Fixed returns a Clock that always tells t, for tests and examples that
// need a known instant.
func Fixed(t time.Time) Clock { return func() time.Time { return t } }
