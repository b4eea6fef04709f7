package main

import (
	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// selfBatch turns measurements into datapoints of the nf.app=sextant series.
func selfBatch(ms []lib.Measurement, t int64, node string) *tsdb.Batch {
	b := &tsdb.Batch{Points: make([]tsdb.Datapoint, 0, len(ms))}
	for _, m := range ms {
		dst := "rate"
		if m.Gauge {
			dst = "gauge"
		}
		ts := tags.Set{{Key: tags.NameKey, Value: m.Id.Name()}, {Key: "nf.app", Value: "sextant"}, {Key: tsdb.DSTypeKey, Value: dst}}
		if node != "" {
			ts = append(ts, tags.Tag{Key: "nf.node", Value: node})
		}
		for _, t := range m.Id.Tags() {
			ts = append(ts, tags.Tag{Key: t.Key, Value: t.Value})
		}
		b.Points = append(b.Points, tsdb.Datapoint{Tags: ts.Normalize(), T: t, V: m.Value})
	}
	return b
}
