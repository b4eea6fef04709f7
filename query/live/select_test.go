package live_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestNewSeriesJoinsLive: a group keeps the series its queries selected
// from step to step (tsdb.Selection); a series that appears after the
// subscription, matching its query, is in the next steps all the same,
// and the stream still equals the graph API's answer.
func TestNewSeriesJoinsLive(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		"name,requests,:eq,:sum",
		"name,requests,:eq,(,node,),:by",
		"name,requests,:eq,node,(,a,d,),:in,:and,:max",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, live.Options{})
				c := &collector{}
				sub, err := f.ev.Subscribe(t.Context(), live.Request{Expr: q, Backfill: 2 * step}, c.sink)
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				time.Sleep(time.Duration(3*step) * time.Millisecond) // synctest: advances the bubble's fake clock
				synctest.Wait()
				// A new node reports from the next step on.
				var b tsdb.Batch
				now := time.Now().UnixMilli()
				for i := range int64(4) {
					b.Points = append(b.Points, tsdb.Datapoint{Tags: tags.New("name", "requests", "node", "d"), T: now + i*step, V: 1000 + float64(i)})
				}
				if err := f.store.(tsdb.Appender).Append(t.Context(), &b); err != nil || len(b.Rejected) > 0 {
					t.Fatalf("append: %v, rejected %v", err, b.Rejected)
				}
				time.Sleep(time.Duration(4*step) * time.Millisecond) // synctest: advances the bubble's fake clock
				synctest.Wait()
				_, _, lines, labels := c.joined(t)
				seen := false
				for id, vals := range lines {
					for _, v := range vals {
						seen = seen || v >= 1000
					}
					_ = labels[id]
				}
				if !seen {
					t.Errorf("%s: the new series never showed in the live steps", q)
				}
				f.checkAgainstGraph(t, q, c, step)
			})
		})
	}
}
