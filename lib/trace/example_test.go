package trace_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/lib/trace"
)

func ExampleSetup() {
	ctx := context.Background()
	tp, err := trace.Setup(ctx, trace.Options{
		Endpoint:    "http://localhost:4318", // Sextant's OTLP/HTTP listener
		ServiceName: "checkout",
		Attributes:  map[string]string{"service.version": "1.4.2"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Flush the spans still batched on the way out.
	defer tp.Shutdown(ctx)
}

func ExampleHandler() {
	reg := lib.NewRegistry(lib.RegistryOptions{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "item "+r.PathValue("id"))
	})
	// Every request: a server span and the ipc.server.call timer.
	srv := httptest.NewServer(trace.Handler(reg, mux, trace.HTTPOptions{}))
	defer srv.Close()

	// Every call: a client span, trace headers, the ipc.client.call timer.
	client := &http.Client{Transport: trace.Transport(reg, nil, trace.HTTPOptions{})}
	ctx := trace.WithEndpoint(context.Background(), "items.get")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/items/42", nil)
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	fmt.Println(reg.PercentileTimer("ipc.server.call", "ipc.endpoint", "_items__id_", "http.method", "GET",
		"http.status", "200", "ipc.result", "success", "ipc.status", "success").Count())
	fmt.Println(reg.PercentileTimer("ipc.client.call", "ipc.endpoint", "items.get", "http.method", "GET",
		"http.status", "200", "ipc.result", "success", "ipc.status", "success").Count())
	// Output:
	// 1
	// 1
}
