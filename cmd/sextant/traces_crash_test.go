package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// binary is a running sextant binary.
type binary struct {
	cmd  *exec.Cmd
	addr string
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sextant")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs the binary on dir with a 1 s step and waits for its
// ready line.
func startBinary(t *testing.T, bin, dir string) *binary {
	t.Helper()
	return runBinary(t, bin, nil, "--data-dir", dir, "--memory-retention", "1h")
}

// runBinary runs `sextant serve` on loopback with a 1 s step, no OTLP
// listeners, the extra environment and flags, and waits for its ready
// line.
func runBinary(t *testing.T, bin string, env []string, flags ...string) *binary {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--otlp-http-listen", "", "--otlp-grpc-listen", "", "--step", "1s",
		"--zipkin-listen", "", "--spectatord-listen", ""}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg="sextant ready" listen=(\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	select {
	case addr := <-addrc:
		return &binary{cmd: cmd, addr: addr}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no ready line within 60 s")
		return nil
	}
}

// crashTraceRequest is trace n: three spans of two services.
func crashTraceRequest(n int) ([]byte, pcommon.TraceID) {
	td := ptrace.NewTraces()
	tid := pcommon.TraceID{0xc7, 0xa5, 12: byte(n >> 24), 13: byte(n >> 16), 14: byte(n >> 8), 15: byte(n)}
	now := time.Now()
	for i, svc := range []string{"api", "db"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		for j := range 2 - i {
			s := ss.AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(pcommon.SpanID{byte(i), byte(j), 7: 1})
			s.SetName(fmt.Sprintf("%s.op%d", svc, j))
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
			s.Attributes().PutInt("n", int64(n))
		}
	}
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b, tid
}

// TestTracesSurviveRestartAndKill: every trace acknowledged with a 200 is
// found after a graceful restart and after kill -9 in the middle of a
// stream of writes.
func TestTracesSurviveRestartAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	var acked []pcommon.TraceID
	var progress atomic.Int64 // traces acknowledged so far, for the kill
	send := func(b *binary, from, to int) (sent int) {
		client := &http.Client{Timeout: 5 * time.Second}
		for n := from; n < to; n++ {
			body, tid := crashTraceRequest(n)
			resp, err := client.Post("http://"+b.addr+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
			if err != nil {
				return n - from // the server died: this one was not acknowledged
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				acked = append(acked, tid)
				progress.Add(1)
			}
		}
		return to - from
	}

	// Life 1: write, then stop gracefully.
	b := startBinary(t, bin, dir)
	send(b, 0, 200)
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// Life 2: write in the background and kill -9 partway.
	b = startBinary(t, bin, dir)
	sentc := make(chan int, 1)
	go func() { sentc <- send(b, 200, 100_000) }()
	// Kill once the stream is well under way (a thousand traces in), not
	// after a fixed time that a loaded machine may not fill.
	waitFor(t, 60*time.Second, "a thousand traces acknowledged", func() bool { return progress.Load() >= 200+1000 })
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
	sent := <-sentc
	if sent < 10 || sent >= 100_000-200 {
		t.Fatalf("sent %d traces before the kill; the test needs some, and a kill mid-stream", sent)
	}

	// Life 3: every acknowledged trace is complete.
	b = startBinary(t, bin, dir)
	defer func() { b.cmd.Process.Signal(os.Interrupt); b.cmd.Wait() }()
	missing := 0
	for _, tid := range acked {
		code, body := get(t, "http://"+b.addr+"/api/traces/"+fmt.Sprintf("%x", tid[:]))
		if code != 200 || bytes.Count([]byte(body), []byte(`"spanID"`)) != 3 {
			missing++
			if missing < 5 {
				t.Errorf("trace %x after the crash: %d %.200s", tid[:], code, body)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged traces lost or incomplete", missing, len(acked))
	}
	t.Logf("%d acknowledged traces, %d sent in the life that was killed", len(acked), sent)
}
