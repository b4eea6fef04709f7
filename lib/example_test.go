package lib_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sextant-dev/sextant/lib"
)

// printStep measures one minute-long step and prints each datapoint.
func printStep(r *lib.Registry) {
	for _, m := range r.Measure(time.Minute) {
		fmt.Printf("%s %.4g\n", m.Id, m.Value)
	}
}

func ExampleCounter() {
	r := lib.NewRegistry(lib.RegistryOptions{})
	requests := r.Counter("server.requests", "status", "200")
	for range 120 {
		requests.Increment()
	}
	printStep(r) // 120 in a minute: 2 per second
	// Output:
	// server.requests{statistic=count,status=200} 2
}

func ExampleTimer() {
	r := lib.NewRegistry(lib.RegistryOptions{})
	latency := r.Timer("server.latency", "route", "/cart")
	latency.Record(100 * time.Millisecond)
	latency.Record(300 * time.Millisecond)
	printStep(r) // rates per second over the minute; max in seconds
	// Output:
	// server.latency{route=/cart,statistic=count} 0.03333
	// server.latency{route=/cart,statistic=totalTime} 0.006667
	// server.latency{route=/cart,statistic=totalOfSquares} 0.001667
	// server.latency{route=/cart,statistic=max} 0.3
}

func ExampleDistributionSummary() {
	r := lib.NewRegistry(lib.RegistryOptions{})
	sizes := r.DistributionSummary("server.response.size")
	sizes.Record(1200)
	sizes.Record(4800)
	printStep(r)
	// Output:
	// server.response.size{statistic=count} 0.03333
	// server.response.size{statistic=totalAmount} 100
	// server.response.size{statistic=totalOfSquares} 4.08e+05
	// server.response.size{statistic=max} 4800
}

func ExampleGauge() {
	r := lib.NewRegistry(lib.RegistryOptions{})
	r.Gauge("queue.depth").Set(17)
	queue := []string{"a", "b", "c"}
	r.FuncGauge(func() float64 { return float64(len(queue)) }, "queue.length")
	printStep(r)
	// Output:
	// queue.depth{statistic=gauge} 17
	// queue.length{statistic=gauge} 3
}

func ExampleMaxGauge() {
	r := lib.NewRegistry(lib.RegistryOptions{})
	inflight := r.MaxGauge("server.inflight")
	for _, n := range []float64{3, 9, 4} {
		inflight.Set(n)
	}
	printStep(r)
	// Output:
	// server.inflight{statistic=max} 9
}

func ExamplePercentileTimer() {
	r := lib.NewRegistry(lib.RegistryOptions{})
	// Between 1 ms and 10 s; a range keeps the number of bucket series low.
	t := r.PercentileTimerFor(lib.NewId("ipc.server.call"), time.Millisecond, 10*time.Second)
	for range 60 {
		t.Record(42 * time.Millisecond)
	}
	for _, m := range r.Measure(time.Minute) {
		if m.Id.Name() == "ipc.server.call" && m.Value == 1 {
			fmt.Println(m.Id) // the count, and the bucket of 42 ms
		}
	}
	// Output:
	// ipc.server.call{statistic=count}
	// ipc.server.call{percentile=T006D,statistic=percentile}
}

func ExampleLongTaskTimer() {
	now := time.Unix(0, 0)
	r := lib.NewRegistry(lib.RegistryOptions{Clock: func() time.Time { return now }})
	migrations := r.LongTaskTimer("db.migration")
	task := migrations.Start()
	now = now.Add(90 * time.Second)
	printStep(r) // while it runs
	fmt.Println(task.Stop())
	// Output:
	// db.migration{statistic=activeTasks} 1
	// db.migration{statistic=duration} 90
	// 1m30s
}

func ExamplePublisher() {
	// A stand-in for a Sextant server's publish endpoint.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, _ := gzip.NewReader(r.Body)
		body, _ := io.ReadAll(zr)
		fmt.Println(r.Header.Get("Content-Encoding"), len(body) > 0)
	}))
	defer srv.Close()

	r := lib.NewRegistry(lib.RegistryOptions{})
	p, err := lib.NewPublisher(r, lib.PublisherOptions{
		URI:        srv.URL + "/api/v1/publish",
		Step:       time.Minute,
		CommonTags: map[string]string{"nf.app": "checkout"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Start()
	r.Counter("server.requests").Increment()
	// On shutdown, Close sends the step in progress.
	if err := p.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// gzip true
}
