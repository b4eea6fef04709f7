# Sextant: the two commands that matter are `make run` and `make test`.
GO ?= go

.PHONY: run demo build test bench fuzz soak compat

## run: start Sextant with its embedded defaults (data in ./sextant-data, HTTP on :7101)
run:
	$(GO) run ./cmd/sextant serve

## demo: run the instrumented demo services against the server of `make run`
demo:
	$(GO) run ./cmd/sextant-demo

## build: build the binary into bin/sextant
build:
	$(GO) build -o bin/sextant ./cmd/sextant

## test: everything CI runs: formatting, vet, all tests under the race
## detector (fuzz seed corpora, crash and restart tests included), and a
## one-iteration smoke run of every benchmark on a small workload
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 45m ./...
	SEXTANT_BENCH_SERIES=2000 SEXTANT_BENCH_SAMPLES=240 SEXTANT_BENCH_SPANS=20000 SEXTANT_BENCH_TRACE_REQUESTS=16 $(GO) test -run='^$$' -bench=. -benchtime=1x -count=1 -timeout 20m ./...

## bench: the full benchmarks of docs/benchmarks.md (100 000 series × 360 steps,
## 10 M spans)
bench:
	$(GO) test -run='^$$' -bench=. -benchtime=2s -timeout 60m ./lib/... ./tsdb/... ./query/...
	$(GO) test -run='^$$' -bench=. -benchtime=5000x -timeout 60m ./tracing/spanstore
	$(GO) test -run='^$$' -bench=TraceIngest -benchtime=6000x -timeout 60m ./cmd/sextant

## fuzz: run each fuzz target for a while (FUZZTIME, default 30s)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## soak: the real binary under mixed load (publishes, OTLP traces, small,
## wide-range and hostile queries) for SOAK (default 10m); reports peak RSS
## and p99 latencies, fails if anything acknowledged is lost. Not in `make test`.
SOAK ?= 10m
soak:
	SEXTANT_SOAK=$(SOAK) $(GO) test -run='^TestSoak$$' -count=1 -v -timeout 3h ./cmd/sextant

## compat: the compatibility suite: real clients (telemetrygen, vmagent,
## spectator-go v0.1.6 and v2, zipkin-go) built from the Go module proxy
## into a temporary directory and run against the real binary
## (cmd/sextant/compat_test.go; SEXTANT_COMPAT_BIN=dir keeps the builds)
compat:
	SEXTANT_COMPAT=1 $(GO) test -count=1 -run '^TestCompat' -timeout 45m -v ./cmd/sextant
