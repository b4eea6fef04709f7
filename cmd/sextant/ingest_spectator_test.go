package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// freeUDPAddr returns a loopback UDP address nobody listens on.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// eventually polls f (a query of the server) until it reports true or 30 s
// pass: datagrams (and scrapes) are stored asynchronously and there is no reply to wait
// on.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !f() {
		if time.Now().After(deadline) {
			t.Errorf("%s: not stored within 30 s", what)
			return
		}
		<-tick.C
	}
}

// TestSpectatorDThroughSockets: issue #10 item 6. SpectatorD's line
// protocol over UDP, a unix datagram socket and HTTP, with its meter
// semantics, and Spectator's batch payload on /api/v1/publish.
func TestSpectatorDThroughSockets(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SpectatorDListen = freeUDPAddr(t)
	cfg.SpectatorDSocket = filepath.Join(t.TempDir(), "spectatord.unix")
	addr := startServe(t, cfg)
	now := time.Now()
	s, e := now.Add(-10*time.Second), now.Add(10*time.Second)
	sum := func(q string) func() float64 {
		return func() float64 { return total(first(graph(t, addr, q, s, e))) }
	}
	maxOf := func(q string) func() float64 {
		return func() float64 {
			m := math.NaN()
			for _, x := range first(graph(t, addr, q, s, e)) {
				if !math.IsNaN(x) && !(x <= m) {
					m = x
				}
			}
			return m
		}
	}

	udp, err := net.Dial("udp", cfg.SpectatorDListen)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	unix, err := net.Dial("unixgram", cfg.SpectatorDSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	for _, msg := range []string{
		"c:sd.requests,status=200:3\nc:sd.requests,status=200:2",
		"t:sd.latency,route=/cart:0.25\nt:sd.latency,route=/cart:0.75",
		"d:sd.size:100\nD:sd.psize:1000\nT:sd.ptimer:0.1",
		"g:sd.queue:7\nm:sd.inflight:9\nm:sd.inflight:4",
		"C:sd.mono:100",
		"A:sd.age:0",
	} {
		if _, err := udp.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := unix.Write([]byte("c:sd.unix,région=Île:4")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    string
		f    func(string) func() float64
		want float64
	}{
		{"name,sd.requests,:eq,status,200,:eq,:and,statistic,count,:eq,:and", sum, 5},
		{"name,sd.latency,:eq,statistic,count,:eq,:and", sum, 2},
		{"name,sd.latency,:eq,statistic,totalTime,:eq,:and", sum, 1},
		{"name,sd.latency,:eq,statistic,totalOfSquares,:eq,:and", sum, 0.625},
		{"name,sd.latency,:eq,statistic,max,:eq,:and", maxOf, 0.75},
		{"name,sd.size,:eq,statistic,totalAmount,:eq,:and", sum, 100},
		{"name,sd.psize,:eq,statistic,count,:eq,:and", sum, 1},
		{"name,sd.queue,:eq,statistic,gauge,:eq,:and", maxOf, 7},
		{"name,sd.inflight,:eq,statistic,max,:eq,:and", maxOf, 9},
		{"name,sd.unix,:eq,région,Île,:eq,:and", sum, 4},
	} {
		eventually(t, tc.q, func() bool { return math.Abs(tc.f(tc.q)()-tc.want) < 1e-9 })
	}
	eventually(t, "percentile timer", func() bool {
		p := maxOf("name,sd.ptimer,:eq,(,50,),:percentiles")()
		return p > 0.08 && p <= 0.12
	})
	eventually(t, "age gauge", func() bool { return maxOf("name,sd.age,:eq")() >= 0 })

	// HTTP: 200, or 400 naming the line and storing nothing.
	if code, body := post(t, "http://"+addr+"/api/v1/spectatord", []byte("c:sd.http:2\nc:sd.http:3\n")); code != 200 {
		t.Errorf("POST /api/v1/spectatord: %d %s", code, body)
	}
	if code, body := post(t, "http://"+addr+"/api/v1/spectatord", []byte("c:sd.http:100\nz:sd.bad:1\n")); code != 400 ||
		!strings.Contains(body, "line 2: unknown meter type") {
		t.Errorf("bad line: %d %s", code, body)
	}
	if got := sum("name,sd.http,:eq")(); got != 5 {
		t.Errorf("sd.http = %v, want 5 (the bad request stores nothing)", got)
	}

	// Spectator's batch payload (spectator-go v0.x) on publish and
	// publish-fast: op 0 adds a count, op 10 keeps the maximum.
	batch := `[6,"name","batch.count","statistic","count","batch.max","max",2,0,1,2,3,0,5,2,0,4,2,5,10,42]`
	for _, path := range []string{"/api/v1/publish", "/api/v1/publish-fast"} {
		if code, body := post(t, "http://"+addr+path, []byte(batch), "Content-Type", "application/json"); code != 200 {
			t.Errorf("batch on %s: %d %s", path, code, body)
		}
	}
	if got := sum("name,batch.count,:eq,statistic,count,:eq,:and")(); got != 10 {
		t.Errorf("batch counter = %v, want 10", got)
	}
	if got := maxOf("name,batch.max,:eq")(); got != 42 {
		t.Errorf("batch max = %v, want 42", got)
	}
	if code, body := post(t, "http://"+addr+"/api/v1/publish", []byte(`[2,"name","x",1,0,9,0,1]`)); code != 400 ||
		!strings.Contains(body, "value index 9") {
		t.Errorf("bad batch: %d %s", code, body)
	}
}

// TestZipkinThroughHTTP: issue #10 item 7. Zipkin v2 JSON and proto3 on
// --zipkin-listen, answered 202 and found through the Jaeger API.
func TestZipkinThroughHTTP(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ZipkinListen = freeAddr(t)
	addr := startServe(t, cfg)
	start := time.Now().Add(-time.Minute).UnixMicro()
	js := fmt.Sprintf(`[{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get /cart","kind":"SERVER",
		"timestamp":%d,"duration":1500,"localEndpoint":{"serviceName":"frontend","ipv4":"10.0.0.1","port":8080},
		"tags":{"http.method":"GET","région":"Île"}},
		{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"7b221d5bc9e6496c","parentId":"6b221d5bc9e6496c","name":"select",
		"kind":"CLIENT","timestamp":%d,"duration":700,"localEndpoint":{"serviceName":"frontend"},
		"remoteEndpoint":{"serviceName":"db"},"tags":{"error":"timeout"},"annotations":[{"timestamp":%d,"value":"retry"}]}]`,
		start, start+100, start+200)
	if code, body := post(t, "http://"+cfg.ZipkinListen+"/api/v2/spans", []byte(js), "Content-Type", "application/json"); code != 202 {
		t.Fatalf("zipkin JSON: %d %s", code, body)
	}
	// The same shape in proto3: one span of another trace.
	var sp []byte
	tid, _ := hex.DecodeString("00000000000000000000000000abcdef")
	sid, _ := hex.DecodeString("0000000000000011")
	sp = protowire.AppendTag(sp, 1, protowire.BytesType)
	sp = protowire.AppendBytes(sp, tid)
	sp = protowire.AppendTag(sp, 3, protowire.BytesType)
	sp = protowire.AppendBytes(sp, sid)
	sp = protowire.AppendTag(sp, 4, protowire.VarintType)
	sp = protowire.AppendVarint(sp, 2) // SERVER
	sp = protowire.AppendTag(sp, 5, protowire.BytesType)
	sp = protowire.AppendString(sp, "proto op")
	sp = protowire.AppendTag(sp, 6, protowire.Fixed64Type)
	sp = protowire.AppendFixed64(sp, uint64(start))
	sp = protowire.AppendTag(sp, 7, protowire.VarintType)
	sp = protowire.AppendVarint(sp, 300)
	var ep []byte
	ep = protowire.AppendTag(ep, 1, protowire.BytesType)
	ep = protowire.AppendString(ep, "protosvc")
	sp = protowire.AppendTag(sp, 8, protowire.BytesType)
	sp = protowire.AppendBytes(sp, ep)
	var list []byte
	list = protowire.AppendTag(list, 1, protowire.BytesType)
	list = protowire.AppendBytes(list, sp)
	if code, body := post(t, "http://"+cfg.ZipkinListen+"/api/v2/spans", list, "Content-Type", "application/x-protobuf"); code != 202 {
		t.Fatalf("zipkin proto3: %d %s", code, body)
	}
	if code, body := post(t, "http://"+cfg.ZipkinListen+"/api/v2/spans", []byte(`[{"traceId":"xyz"}]`), "Content-Type", "application/json"); code != 400 ||
		!strings.Contains(body, "traceId") {
		t.Errorf("bad zipkin span: %d %s", code, body)
	}

	code, body := get(t, "http://"+addr+"/api/traces/5af7183fb1d4cf5f5af7183fb1d4cf5f")
	if code != 200 {
		t.Fatalf("GET trace: %d %s", code, body)
	}
	var tr struct {
		Data []struct {
			Spans []struct {
				OperationName string
				Duration      int64
				Tags          []struct {
					Key   string
					Value any
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil || len(tr.Data) != 1 || len(tr.Data[0].Spans) != 2 {
		t.Fatalf("trace: %v %s", err, body)
	}
	found := map[string]bool{}
	for _, s := range tr.Data[0].Spans {
		found[s.OperationName] = true
		for _, tg := range s.Tags {
			found[tg.Key+"="+fmt.Sprint(tg.Value)] = true
		}
	}
	for _, want := range []string{"get /cart", "select", "région=Île", "peer.service=db", "error=true", "http.method=GET"} {
		if !found[want] {
			t.Errorf("trace lacks %q: %v", want, found)
		}
	}
	if code, body := get(t, "http://"+addr+"/api/traces/00000000000000000000000000abcdef"); code != 200 || !strings.Contains(body, "protosvc") {
		t.Errorf("proto3 trace: %d %.300s", code, body)
	}
}
