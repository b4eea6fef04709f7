package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// send posts the workload to a server's publish API and prints the rate.
func send(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var wf workloadFlags
	wf.register(fs)
	url := fs.String("url", "http://127.0.0.1:7101/api/v1/publish", "Atlas publish endpoint")
	conc := fs.Int("c", 4, "concurrent senders")
	batch := fs.Int("batch", 10_000, "datapoints per request")
	gz := fs.Bool("gzip", false, "gzip request bodies (compressed before the clock starts)")
	pid := fs.Int("pid", 0, "server process id: report its CPU seconds and RSS (Linux)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if *conc <= 0 || *batch <= 0 {
		return usageError{fmt.Errorf("-c %d and -batch %d must be positive", *conc, *batch)}
	}
	w, err := wf.workload(now)
	if err != nil {
		return err
	}
	reqs := bodies(w, *batch)
	points := 0
	for t := range w.Samples() {
		for i := range w.Series {
			if v := w.Values[i][t]; v == v { // not NaN
				points++
			}
		}
	}
	var sent int64
	for i, b := range reqs {
		if *gz {
			reqs[i] = gzipped(b)
		}
		sent += int64(len(reqs[i]))
	}
	w = nil // the bodies are all we need; let the values go

	cpu0, _ := procCPU(*pid)
	user0, sys0 := selfCPU()
	start := now()
	client := &http.Client{Timeout: time.Minute}
	enc := ""
	if *gz {
		enc = "gzip"
	}
	failed, sample := postAll(ctx, client, target{*url, "application/json", enc}, len(reqs), *conc,
		func(i int, _ []byte) ([]byte, error) { return reqs[i], nil })
	elapsed := now().Sub(start).Seconds()
	user1, sys1 := selfCPU()
	for _, err := range sample {
		fmt.Fprintln(stderr, "error:", err)
	}
	fmt.Fprintf(stdout, "RESULT send: datapoints=%d requests=%d errors=%d seconds=%.2f datapoints/s=%.0f bytes=%d client-cpu-s=%.2f",
		points, len(reqs), failed, elapsed, float64(points)/elapsed, sent, (user1-user0)+(sys1-sys0))
	if *pid > 0 {
		cpu1, err := procCPU(*pid)
		rss, hwm := procRSS(*pid)
		if err == nil {
			fmt.Fprintf(stdout, " server-cpu-s=%.2f datapoints/server-cpu-s=%.0f server-rss-MiB=%d server-hwm-MiB=%d",
				cpu1-cpu0, float64(points)/(cpu1-cpu0), rss>>20, hwm>>20)
		}
	}
	fmt.Fprintln(stdout)
	if err := ctx.Err(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed", failed, len(reqs))
	}
	return nil
}

// errorSample is how many failures postAll keeps to show.
const errorSample = 5

// postAll posts bodies 0 to n-1 to tg with conc concurrent senders and
// returns how many requests failed, with the first few failures (at most
// errorSample, in the order they happened). Each sender takes the next
// index from a shared counter, so a slow request holds up no other body;
// all of them stop taking bodies once ctx is done. body returns the i-th
// body; it is called from conc goroutines at once, and may reuse buf, the
// calling sender's previous body (a spool reads into it).
func postAll(ctx context.Context, client *http.Client, tg target, n, conc int, body func(i int, buf []byte) ([]byte, error)) (failed int, sample []error) {
	var (
		next atomic.Int64
		errs atomic.Int64
		mu   sync.Mutex // guards sample
		wg   sync.WaitGroup
	)
	for range conc {
		wg.Go(func() {
			var buf []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				b, err := body(i, buf)
				buf = b
				if err == nil {
					err = postBody(ctx, client, tg.url, tg.contentType, tg.encoding, b)
				}
				if err != nil && errs.Add(1) <= errorSample {
					mu.Lock()
					sample = append(sample, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return int(errs.Load()), sample
}

// sendMeasured posts n bodies to tg (postAll) and measures the load: the
// wall time, process pid's CPU seconds over the run and its RSS right
// after the last answer. items is what the bodies carry (datapoints or
// spans), for the rates of the report.
func sendMeasured(ctx context.Context, tg target, n, items, conc, pid int, now func() time.Time, body func(i int, buf []byte) ([]byte, error)) (load, error) {
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	cpu0, err := procCPU(pid)
	if err != nil {
		return load{}, err
	}
	start := now()
	failed, sample := postAll(ctx, client, tg, n, conc, body)
	l := load{items: items, requests: n, errors: failed, wall: now().Sub(start).Seconds()}
	cpu1, err := procCPU(pid)
	if err != nil {
		return l, err
	}
	l.cpu = cpu1 - cpu0
	l.rss, _ = procRSS(pid)
	if err := ctx.Err(); err != nil {
		return l, err
	}
	if len(sample) > 0 {
		return l, fmt.Errorf("%d of %d requests failed, the first: %w", l.errors, l.requests, sample[0])
	}
	return l, nil
}

// postBody sends one body with its content type and encoding (none when
// empty) and returns an error for a transport failure or a non-2xx answer.
func postBody(ctx context.Context, client *http.Client, url, contentType, encoding string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// selfCPU returns this process's user and system CPU seconds.
func selfCPU() (user, sys float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return float64(ru.Utime.Nano()) / 1e9, float64(ru.Stime.Nano()) / 1e9
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times on Linux.
const clockTicks = 100

// procCPU returns the user+system CPU seconds of process pid from
// /proc/PID/stat.
func procCPU(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis are fixed: utime and stime are the 12th and 13th.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (ut + st) / clockTicks, nil
}

// procRSS returns the resident and peak resident bytes of process pid.
func procRSS(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}
