package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// soakStep is the soak server's --step, and the step of its live
// subscriptions; soakLiveDelay its --live-delay.
const (
	soakStep      = 10 * time.Second
	soakLiveDelay = 2 * time.Second
)

// soakLiveQueries are the expressions the soak's WebSocket clients each
// subscribe to (id → expression): a sum, a group by, a count and a
// stateful word, all over the published series.
var soakLiveQueries = map[string]string{
	"sum":   "name,soak.pub,:eq,:sum",
	"bypub": "name,soak.pub,:eq,(,pub,),:by",
	"count": "name,soak.pub,:eq,:count",
	"roll":  "name,soak.pub,:eq,:sum,3,2,:rolling-mean",
}

// soakSSEQueries are the soak's SSE streams (subscription id → expression).
var soakSSEQueries = map[string]string{
	"sse-sum": "name,soak.pub,:eq,:sum",
	"sse-max": "name,soak.pub,:eq,:max",
}

// soakLive is the soak's live subscribers: WebSocket connections with
// several subscriptions each and SSE streams, read for the whole run.
type soakLive struct {
	ws     []*liveClient
	sse    map[string]*liveClient
	bodies []io.Closer
}

// startSoakLive opens conns WebSocket connections, each subscribed to
// every soakLiveQueries expression, and one SSE stream per soakSSEQueries.
func startSoakLive(t *testing.T, addr string, conns int) *soakLive {
	t.Helper()
	s := &soakLive{sse: map[string]*liveClient{}}
	for range conns {
		var subs []map[string]any
		for id, q := range soakLiveQueries {
			subs = append(subs, map[string]any{"id": id, "q": q, "step": soakStep.String(), "backfill": "1m"})
		}
		_, c := dialLive(t, addr, subs...)
		s.ws = append(s.ws, c)
	}
	for id, q := range soakSSEQueries {
		v := url.Values{"id": {id}, "q": {q}, "step": {soakStep.String()}, "backfill": {"1m"}}
		resp, err := http.Get("http://" + addr + "/api/v1/stream/sse?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			t.Fatalf("sse %s: status %d", id, resp.StatusCode)
		}
		c := newLiveClient()
		go func() {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					if c.add([]byte(data)) != nil {
						return
					}
				}
			}
		}()
		s.sse[id] = c
		s.bodies = append(s.bodies, resp.Body)
	}
	t.Cleanup(s.close)
	return s
}

// close ends the SSE streams (the WebSockets close in dialLive's cleanup).
func (s *soakLive) close() {
	for _, b := range s.bodies {
		b.Close()
	}
	s.bodies = nil
}

// soakLiveFigures summarizes the live subscribers of a soak run.
type soakLiveFigures struct {
	subscriptions int
	steps         int // live steps received, over all subscriptions
	lags          []time.Duration
	late          int // steps of the "sum" subscription whose live value differs from the stored one
	compared      int
}

// check waits until every subscription has received the step closing at
// or before last (at most a minute: a failure, not a timing), then fails
// on a diagnostic (a dropped message, a limit, an error), on a gap or an
// overlap between consecutive messages of a line, and on a subscription
// that received fewer live steps than the run had; it compares the "sum"
// subscription of the first connection with the graph API over the same
// steps.
func (s *soakLive) check(t *testing.T, addr string, from, last time.Time) soakLiveFigures {
	t.Helper()
	step := soakStep.Milliseconds()
	lastEnd := last.UnixMilli()/step*step + step // end of the newest closed step's message
	wantSteps := int(last.Sub(from)/soakStep) - 2
	var f soakLiveFigures
	one := func(name string, c *liveClient, subs []string) {
		// Every subscription must get the last step of the run: wait for it
		// (at most two minutes, a failure rather than a timing).
		timeout := time.After(2 * time.Minute)
	wait:
		for {
			behind := ""
			for _, sub := range subs {
				if e := c.end(sub); e < lastEnd {
					behind += fmt.Sprintf(" %s at %d", sub, e)
				}
			}
			if behind == "" {
				break
			}
			select {
			case <-c.cond:
			case <-timeout:
				t.Errorf("%s: subscriptions did not reach the run's last step (end %d) within two minutes:%s", name, lastEnd, behind)
				break wait
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		ends := map[string]int64{} // line id → end of its previous message
		live := map[string]int{}   // subscription → live steps
		seen := map[string]int64{} // subscription → newest live end counted
		for _, m := range c.msgs {
			switch m.Type {
			case "diagnostic":
				t.Errorf("%s: diagnostic %q (dropped %d)", name, m.Message, m.Dropped)
			case "timeseries":
				key := m.Subscription + "/" + m.ID
				if e, ok := ends[key]; ok && e != m.Start {
					t.Errorf("%s %s line %q: a message starts at %d, the previous ended at %d", name, m.Subscription, m.Label, m.Start, e)
				}
				ends[key] = m.End
				if m.End-m.Start == m.Step && m.End > seen[m.Subscription] {
					seen[m.Subscription] = m.End
					live[m.Subscription]++
				}
			}
		}
		for _, sub := range subs {
			f.subscriptions++
			f.steps += live[sub]
			if live[sub] < wantSteps {
				t.Errorf("%s %s: %d live steps over the run, want at least %d", name, sub, live[sub], wantSteps)
			}
		}
		f.lags = append(f.lags, c.lag...)
	}
	ids := make([]string, 0, len(soakLiveQueries))
	for id := range soakLiveQueries {
		ids = append(ids, id)
	}
	for i, c := range s.ws {
		one(fmt.Sprintf("websocket %d", i), c, ids)
	}
	for id, c := range s.sse {
		one("sse", c, []string{id})
	}
	f.late, f.compared = s.compareSum(t, addr)
	return f
}

// compareSum compares the "sum" subscription of the first WebSocket
// client with the graph API, step by step, and returns the number of
// steps that differ and that were compared. A datapoint stored after its
// step was evaluated is a late one, which live does not send again: the
// soak reports those, and fails only on a live value above the stored one.
func (s *soakLive) compareSum(t *testing.T, addr string) (late, compared int) {
	t.Helper()
	c := s.ws[0]
	step := soakStep.Milliseconds()
	live := map[int64]float64{}
	c.mu.Lock()
	for _, m := range c.msgs {
		if m.Type != "timeseries" || m.Subscription != "sum" {
			continue
		}
		for i, v := range m.Data.Values {
			if x, ok := v.(float64); ok {
				live[m.Start+int64(i)*step] = x
			}
		}
	}
	c.mu.Unlock()
	if len(live) == 0 {
		t.Error("the sum subscription received no value")
		return 0, 0
	}
	ts := make([]int64, 0, len(live))
	for k := range live {
		ts = append(ts, k)
	}
	slices.Sort(ts)
	// Graph point T covers (T-step, T], as a live point does.
	v := url.Values{"q": {soakLiveQueries["sum"]}, "s": {fmt.Sprint(ts[0])}, "e": {fmt.Sprint(ts[len(ts)-1] + step)},
		"step": {soakStep.String()}, "format": {"json"}}
	resp, err := http.Get("http://" + addr + "/api/v1/graph?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g struct {
		Start  int64
		Step   int64
		Values [][]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || resp.StatusCode != 200 {
		t.Fatalf("graph of the sum: %d %v", resp.StatusCode, err)
	}
	for i, row := range g.Values {
		at := g.Start + int64(i)*g.Step
		lv, ok := live[at]
		if !ok || len(row) == 0 {
			continue
		}
		stored, isNum := row[0].(float64)
		if !isNum {
			stored = math.NaN()
		}
		compared++
		switch {
		case lv == stored:
		case lv > stored:
			t.Errorf("live sum at %d is %v, the store has %v: live counted what the store does not", at, lv, stored)
		default:
			late++
		}
	}
	return late, compared
}
