package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The access checks of --auth-token, applied to whole listeners (not per
// handler, so that every handler added to a mux is covered):
//
//   - with a token, every request but GET /healthz needs
//     "Authorization: Bearer <token>", compared in constant time; otherwise
//     a JSON 401 with WWW-Authenticate.
//   - with or without a token, a request that changes state (any method but
//     GET, HEAD and OPTIONS) from another site is refused with a JSON 403:
//     the browser says so in Sec-Fetch-Site, or the Origin header names
//     another host than the one addressed. Clients that are not browsers
//     send neither header and are unaffected.

// withAccess returns the token and cross-site checks as a middleware.
// allowedOrigins are origins (scheme://host[:port]) also allowed to make
// changes. public, when set, reports the requests that need no token: the
// web UI's page and assets, which hold no data, so a browser can load the
// page that then asks for the token. A browser cannot set headers on a
// WebSocket or an EventSource, so the streams also take the token as the
// access_token query parameter (and only they, to keep it out of other
// URLs and logs).
func withAccess(token string, allowedOrigins []string, public func(*http.Request) bool) func(http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	wantRaw := []byte(token)
	allowed := map[string]bool{}
	for _, o := range allowedOrigins {
		allowed[strings.TrimSuffix(o, "/")] = true
	}
	authorized := func(r *http.Request) bool {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1 {
			return true
		}
		if strings.HasPrefix(r.URL.Path, "/api/v1/stream") && r.URL.Query().Has("access_token") {
			return subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("access_token")), wantRaw) == 1
		}
		return false
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token != "" && r.URL.Path != "/healthz" && (public == nil || !public(r)) && !authorized(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sextant"`)
				writeJSONError(w, http.StatusUnauthorized, "authorization required: send the header Authorization: Bearer <token> (the server's --auth-token)")
				return
			}
			if mutating(r.Method) && crossSite(r, allowed) {
				writeJSONError(w, http.StatusForbidden, "cross-site request refused: "+r.Method+" "+r.URL.Path+" must come from the same origin (or one in --allowed-origins)")
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// crossSite reports whether a browser sent r from another site.
func crossSite(r *http.Request, allowed map[string]bool) bool {
	origin := r.Header.Get("Origin")
	if origin != "" && allowed[origin] {
		return false
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s == "cross-site" || s == "same-site" {
		return true
	}
	if origin == "" || origin == "null" {
		return origin == "null"
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}{"error", msg})
}

// grpcAuth returns the server options that require the token in the
// "authorization" metadata of every OTLP/gRPC call; none without a token.
func grpcAuth(token string) []grpc.ServerOption {
	if token == "" {
		return nil
	}
	want := []byte("Bearer " + token)
	check := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get("authorization") {
			if subtle.ConstantTimeCompare([]byte(v), want) == 1 {
				return nil
			}
		}
		return status.Error(codes.Unauthenticated, "authorization required: send the metadata authorization: Bearer <token> (the server's --auth-token)")
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
