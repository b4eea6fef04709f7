// Package lib is Sextant's client library: a registry of tagged meters with
// Spectator semantics, which services use to publish metrics.
//
// A meter is identified by an Id, a name plus tags. Counters publish a rate
// per second over each step (statistic=count); timers and distribution
// summaries publish count, total, total of squares and max; gauges publish
// their last value and max gauges the largest value of the step.
//
// lib imports nothing from the server: the server uses it for its own
// metrics, never the other way around.
package lib
