package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/ui"
)

// benchServer is a real HTTP server with the stream on a 1 s storage step
// and no delay, over a store with 100 metrics × 3 nodes around now.
func benchServer(b *testing.B) (*httptest.Server, *ui.Stream) {
	b.Helper()
	now := time.Now().UnixMilli() / 1000 * 1000
	from := now - 600_000
	var inputs []querytest.Input
	for m := 0; m < 100; m++ {
		for n := 0; n < 3; n++ {
			vals := make([]float64, 1800)
			for j := range vals {
				vals[j] = float64(m*10+n) + math.Sin(float64(j)/10)
			}
			inputs = append(inputs, querytest.Input{Tags: tags.New("name", fmt.Sprintf("m%02d", m), "node", fmt.Sprint(n)), Start: from, Values: vals})
		}
	}
	store := querytest.Open(b, 1000, now, inputs...)
	ev, err := live.New(live.Options{Querier: store, StorageStep: 1000, Delay: 0})
	if err != nil {
		b.Fatal(err)
	}
	st, err := ui.NewStream(ui.StreamOptions{Live: ev})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	st.Register(mux)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = ev.Run(ctx) })
	b.Cleanup(func() {
		st.Close()
		srv.Close()
		cancel()
		wg.Wait()
	})
	return srv, st
}

// BenchmarkStream1000Subscribers: 1 000 WebSocket clients over real TCP,
// subscribed to 100 distinct expressions (10 each), on a 1 s step. Each
// iteration is one step; it reports the latency from the step's close
// (when its evaluation starts, the delay being 0) to the message read by
// the client, over every message.
func BenchmarkStream1000Subscribers(b *testing.B) {
	srv, _ := benchServer(b)
	const clients = 1000
	var (
		mu      sync.Mutex
		lat     []time.Duration
		perStep = map[int64]int{}
		stepC   = make(chan int64, 1000)
	)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/stream"
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, conn)
		sub, _ := json.Marshal(map[string]string{"type": "subscribe", "id": "s", "q": fmt.Sprintf("name,m%02d,:eq,:sum", i%100)})
		if err := conn.WriteMessage(websocket.TextMessage, sub); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					return
				}
				read := time.Now()
				// A cheap look at the message, so the in-process clients
				// take as little of the two cores as they can.
				if !bytes.HasPrefix(data, []byte(`{"type":"timeseries"`)) {
					continue
				}
				end, step := jsonInt(data, `"end":`), jsonInt(data, `"step":`)
				t := end - step
				mu.Lock()
				lat = append(lat, read.Sub(time.UnixMilli(t)))
				perStep[t]++
				if perStep[t] == clients {
					stepC <- t
				}
				mu.Unlock()
			}
		})
	}
	// Wait for a first step every client got (all subscriptions made),
	// then measure.
	<-stepC
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	b.ResetTimer()
	for b.Loop() {
		<-stepC
	}
	b.StopTimer()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(len(lat)), "messages")
}

// jsonInt reads the integer after key in a message.
func jsonInt(data []byte, key string) int64 {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return 0
	}
	v := int64(0)
	for _, c := range data[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	return v
}

// BenchmarkStreamIdleConnection opens 1 000 idle WebSockets and reports
// the memory (heap and stacks) per connection, the client's side included:
// an upper bound of what the server holds per idle connection.
func BenchmarkStreamIdleConnection(b *testing.B) {
	srv, st := benchServer(b)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/stream"
	const n = 1000
	d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, WriteBufferPool: &sync.Pool{}}
	var perConn float64
	for b.Loop() {
		for st.Connections() > 0 {
			runtime.Gosched() // the previous round's connections are closing
		}
		before := memInUse()
		conns := make([]*websocket.Conn, 0, n)
		for i := 0; i < n; i++ {
			c, _, err := d.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		for st.Connections() < n {
			runtime.Gosched() // the server's handlers are starting
		}
		perConn = float64(memInUse()-before) / n
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(perConn, "bytes/conn")
}

func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
