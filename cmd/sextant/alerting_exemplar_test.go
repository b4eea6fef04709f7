package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/sextant-dev/sextant/alerting/notify"
)

// TestAlertingExemplars: a rule over span metrics pages with up to three
// trace ids of its firing window, each one a trace the service sent, and
// links to them in the UI.
func TestAlertingExemplars(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 10 s")
	}
	t.Parallel()
	addr, hook := alertingServe(t, `groups:
  - name: spans
    rules:
      - alert: CheckoutBusy
        expr: name,span.calls,:eq,service.name,checkout,:eq,:and,(,service.name,),:by,0,:gt
        nodata: ok
`)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+addr+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	svc := newTracedService(t, "checkout", exp)
	tr := svc.tp.Tracer("checkout-http")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			// Each span gets a distinct duration through its timestamps,
			// not by sleeping while it is open.
			t0 := time.Now()
			_, s := tr.Start(ctx, "POST /checkout", oteltrace.WithSpanKind(oteltrace.SpanKindServer), oteltrace.WithTimestamp(t0))
			s.End(oteltrace.WithTimestamp(t0.Add(time.Duration(1+i%7) * time.Millisecond)))
		}
	}()
	m := hook.next(t, 20*time.Second)
	close(stop)
	<-done
	a := m.msg.Alerts[0]
	ids := strings.Split(a.Annotations[notify.TraceIDsAnnotation], ",")
	if a.Annotations[notify.TraceIDsAnnotation] == "" || len(ids) > 3 {
		t.Fatalf("trace ids %q in %s", a.Annotations[notify.TraceIDsAnnotation], m.raw)
	}
	var sent []string
	for _, s := range svc.rec.Ended() {
		sent = append(sent, s.SpanContext().TraceID().String())
	}
	links := strings.Fields(a.Annotations[notify.TraceLinksAnnotation])
	for i, id := range ids {
		if !slices.Contains(sent, id) {
			t.Errorf("trace id %s was not sent by the service", id)
		}
		if i >= len(links) || links[i] != "http://sextant.example/ui/traces/"+id {
			t.Errorf("links %q", links)
		}
	}
}
