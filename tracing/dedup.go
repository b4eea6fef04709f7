package tracing

import "reflect"

// DedupSpans removes from spans, in place, every span that repeats an
// earlier one exactly (the same ids, times and content): a span written
// twice is stored twice, by a client's retry (or a cluster store node
// whose span store keeps no marks and replays the log after a crash), and
// a trace shows it once, as Jaeger's query service does. Spans that share an
// id but differ (Zipkin's client and server halves of one span) are kept.
// It returns the shortened slice, the kept spans in their order.
func DedupSpans(spans []Span) []Span {
	if len(spans) < 2 {
		return spans
	}
	// Spans alike in these are compared in full; a real trace has few.
	type key struct {
		id         SpanID
		start, end int64
		kind       SpanKind
	}
	kept := make(map[key][]int, len(spans)) // indexes into out
	out := spans[:0]
	for i := range spans {
		sp := spans[i]
		k := key{sp.SpanID, sp.Start, sp.End, sp.Kind}
		dup := false
		for _, j := range kept[k] {
			if reflect.DeepEqual(out[j], sp) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		kept[k] = append(kept[k], len(out))
		out = append(out, sp)
	}
	clear(spans[len(out):]) // drop references held by the removed tail
	return out
}
