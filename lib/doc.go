// Package lib is Sextant's client library: a registry of tagged meters
// with Spectator semantics, and a publisher that sends them to a Sextant
// server every step. Tracing lives in lib/trace (the OpenTelemetry SDK);
// the publish payload and tag rules in lib/wire.
//
// A meter is identified by an Id: a name plus tags. Each step the
// publisher reports, per meter, datapoints tagged with a statistic:
//
//	Counter                        count (a rate per second)
//	Timer                          count, totalTime, totalOfSquares (rates; seconds), max (seconds)
//	DistributionSummary            count, totalAmount, totalOfSquares (rates), max
//	PercentileTimer / ...Summary   the above, plus percentile bucket counters (statistic=percentile,
//	                               percentile=T00XX or D00XX) that the stack language's :percentiles reads
//	Gauge                          gauge (the last value set, or a function polled each step)
//	MaxGauge                       max (the largest value set during the step)
//	LongTaskTimer                  activeTasks and duration (seconds) of the tasks in flight
//
// Rates carry atlas.dstype=rate, the others atlas.dstype=gauge. Meters
// not updated for 15 minutes expire: they stop being published and leave
// the registry; a meter updated after expiring registers itself again.
//
// Updating a meter is a few atomic operations and never allocates or
// blocks; looking a meter up by name and tags in a warm registry does not
// allocate. lib never panics on input, starts goroutines only in a
// Publisher (which Close stops), and imports nothing from the server.
package lib
