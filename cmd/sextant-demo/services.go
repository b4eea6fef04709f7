package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/sextant-dev/sextant/lib"
)

// titleCount is the catalog's size: ids 1..titleCount exist.
const titleCount = 1000

var genres = []string{"drama", "comedy", "documentary", "thriller", "animation", "sci-fi"}

type title struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Genre string `json:"genre"`
}

func titleByID(id int) title {
	return title{ID: id, Name: fmt.Sprintf("Title %d", id), Genre: genres[id%len(genres)]}
}

// catalog answers title lookups from a cache or a (simulated) database.
func catalog(s *service, faults *faultSwitch) {
	hits := s.reg.Counter("catalog.cache", "result", "hit")
	misses := s.reg.Counter("catalog.cache", "result", "miss")
	size := s.reg.PercentileDistributionSummaryFor(lib.NewId("catalog.responseSize"), 0, 1<<20)
	s.reg.FuncGauge(func() float64 { return titleCount }, "catalog.titles")

	lookup := func(ctx context.Context, id int) error {
		if faults.get() == faultCatalogSlow {
			if err := sleep(ctx, s.latency(250*time.Millisecond, 0.3)); err != nil {
				return err
			}
		}
		_, span := s.tracer.Start(ctx, "cache.get", oteltrace.WithAttributes(attribute.Int("title.id", id)))
		hit := s.chance(0.8)
		span.SetAttributes(attribute.Bool("cache.hit", hit))
		_ = sleep(ctx, s.latency(500*time.Microsecond, 0.3))
		span.End()
		if hit {
			hits.Increment()
			return nil
		}
		misses.Increment()
		ctx, span = s.tracer.Start(ctx, "SELECT titles", oteltrace.WithSpanKind(oteltrace.SpanKindClient),
			oteltrace.WithAttributes(
				attribute.String("db.system.name", "postgresql"),
				attribute.String("db.query.text", "SELECT id, name, genre FROM titles WHERE id = $1"),
				attribute.Int64("db.response.returned_rows", 1),
			))
		defer span.End()
		err := sleep(ctx, s.latency(12*time.Millisecond, 0.5))
		if err == nil && s.chance(0.005) {
			err = errors.New("db: connection reset by peer")
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}

	s.mux.HandleFunc("GET /titles/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > titleCount {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no title " + r.PathValue("id")})
			return
		}
		if err := lookup(r.Context(), id); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		size.Record(float64(300 + s.intn(2000)))
		writeJSON(w, http.StatusOK, titleByID(id))
	})
	s.mux.HandleFunc("GET /titles/popular", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		n = min(max(n, 1), 50)
		_ = sleep(r.Context(), s.latency(3*time.Millisecond, 0.4))
		ids := make([]int, n)
		for i := range ids {
			ids[i] = 1 + s.intn(titleCount/10) // popular titles are the low ids
		}
		size.Record(float64(20 * n))
		writeJSON(w, http.StatusOK, ids)
	})
}

// recommendations scores candidates from the catalog's popular list.
func recommendations(s *service, faults *faultSwitch, catalogURL string) {
	start := time.Now()
	candidates := s.reg.DistributionSummary("recs.candidates")
	s.reg.FuncGauge(func() float64 { return time.Since(start).Seconds() }, "recs.modelAge")

	s.mux.HandleFunc("GET /recs", func(w http.ResponseWriter, r *http.Request) {
		if faults.get() == faultRecsDown {
			_ = sleep(r.Context(), s.latency(2*time.Millisecond, 0.3))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "model not loaded"})
			return
		}
		user := r.URL.Query().Get("user")
		if user == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "user is required"})
			return
		}
		var ids []int
		if _, err := s.call(r.Context(), "catalog.popular", http.MethodGet, catalogURL+"/titles/popular?n=20", &ids); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		candidates.Record(float64(len(ids)))
		_, span := s.tracer.Start(r.Context(), "model.score", oteltrace.WithAttributes(
			attribute.String("model.version", "2026-11-01"),
			attribute.Int("candidates", len(ids)),
			attribute.String("user.id", user),
		))
		err := sleep(r.Context(), s.latency(20*time.Millisecond, 0.4))
		if err == nil && s.chance(0.01) {
			err = errors.New("model: feature store timeout")
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		span.AddEvent("scored", oteltrace.WithAttributes(attribute.Float64Slice("scores.top", []float64{0.93, 0.88, 0.81})))
		span.End()
		writeJSON(w, http.StatusOK, ids[:min(len(ids), 6)])
	})
}

// playback starts streams: a license check and a CDN choice.
func playback(s *service, faults *faultSwitch) {
	bitrate := s.reg.PercentileDistributionSummaryFor(lib.NewId("playback.bitrate"), 200, 20000)
	streams := s.reg.LongTaskTimer("playback.streams")
	cdns := []string{"oca-lax-01", "oca-iad-04", "oca-ams-02"}

	s.mux.HandleFunc("POST /play/{id}", func(w http.ResponseWriter, r *http.Request) {
		device := r.URL.Query().Get("device")
		switch device {
		case "tv", "mobile", "web":
		default:
			device = "other"
		}
		starts := func(result string) { s.reg.Counter("playback.starts", "device", device, "result", result).Increment() }
		ctx, span := s.tracer.Start(r.Context(), "license.check", oteltrace.WithAttributes(attribute.String("drm.system", "widevine")))
		_ = sleep(ctx, s.latency(15*time.Millisecond, 0.3))
		span.AddEvent("license.granted", oteltrace.WithAttributes(attribute.Int64("license.ttl_s", 3600)))
		span.End()

		failP := 0.01 + s.extraErrors
		if faults.get() == faultPlaybackErrors {
			failP = 0.4
		}
		_, span = s.tracer.Start(ctx, "cdn.select")
		_ = sleep(ctx, s.latency(8*time.Millisecond, 0.5))
		if s.chance(failP) {
			err := errors.New("cdn: no healthy node in region")
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			starts("failure")
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		node := cdns[s.intn(len(cdns))]
		span.SetAttributes(attribute.String("cdn.node", node))
		span.End()
		starts("success")
		kbps := 1500 + s.intn(14000)
		bitrate.Record(float64(kbps))
		// The stream plays on for a while: the long task timer counts it.
		task := streams.Start()
		time.AfterFunc(time.Duration(5+s.intn(55))*time.Second, func() { task.Stop() })
		writeJSON(w, http.StatusOK, map[string]any{"title": r.PathValue("id"), "cdn": node, "kbps": kbps})
	})
}

// frontend serves the pages, calling the other three.
func frontend(s *service, faults *faultSwitch, catalogURL, recsURL, playbackURL string) {
	s.mux.Handle("/fault", faults)
	s.mux.HandleFunc("GET /api/home", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "user is required"})
			return
		}
		s.reg.Counter("frontend.pageViews", "page", "home").Increment()
		var ids []int
		if _, err := s.call(r.Context(), "recs.get", http.MethodGet, recsURL+"/recs?user="+url.QueryEscape(user), &ids); err != nil {
			// Degrade: the popular list instead of personal picks.
			oteltrace.SpanFromContext(r.Context()).AddEvent("fallback", oteltrace.WithAttributes(
				attribute.String("reason", err.Error())))
			s.reg.Counter("frontend.fallbacks", "reason", "recs").Increment()
			if _, err := s.call(r.Context(), "catalog.popular", http.MethodGet, catalogURL+"/titles/popular?n=6", &ids); err != nil {
				writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
				return
			}
		}
		rows := make([]title, len(ids))
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				_, errs[i] = s.call(r.Context(), "catalog.title", http.MethodGet, fmt.Sprintf("%s/titles/%d", catalogURL, id), &rows[i])
			})
		}
		wg.Wait()
		var ok []title
		for i := range rows {
			if errs[i] == nil {
				ok = append(ok, rows[i])
			}
		}
		if len(ok) == 0 && len(ids) > 0 {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": errors.Join(errs...).Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"user": user, "rows": ok})
	})
	s.mux.HandleFunc("POST /api/play/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s.reg.Counter("frontend.pageViews", "page", "play").Increment()
		var t title
		if code, err := s.call(r.Context(), "catalog.title", http.MethodGet, catalogURL+"/titles/"+url.PathEscape(id), &t); err != nil {
			if code == http.StatusNotFound {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no title " + id})
				return
			}
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		device := r.URL.Query().Get("device")
		var out map[string]any
		if _, err := s.call(r.Context(), "playback.start", http.MethodPost, playbackURL+"/play/"+url.PathEscape(id)+"?device="+url.QueryEscape(device), &out); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		out["name"] = t.Name
		writeJSON(w, http.StatusOK, out)
	})
}
