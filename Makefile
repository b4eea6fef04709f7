# Sextant: the two commands that matter are `make run` and `make test`.
GO ?= go

.PHONY: run demo build test bench bench-vs fuzz soak compat staticcheck

## run: start Sextant with its embedded defaults (data in ./sextant-data, HTTP on :7101)
run:
	$(GO) run ./cmd/sextant serve

## demo: run the instrumented demo services against the server of `make run`
demo:
	$(GO) run ./cmd/sextant-demo

## build: build the binary into bin/sextant
build:
	$(GO) build -o bin/sextant ./cmd/sextant

## test: everything CI runs: formatting, vet, staticcheck, all tests under
## the race detector (fuzz seed corpora, crash and restart tests, the lint
## the lint tests of cmd/sextant included), the allocation budgets without the race
## detector (it allocates, so they skip under it), and a one-iteration smoke
## run of every benchmark on a small workload
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@$(MAKE) --no-print-directory staticcheck
	$(GO) test -race -count=1 -timeout 45m ./...
	$(GO) test -count=1 -run 'Alloc' $$(grep -rlE --include='*_test.go' 'func Test[A-Za-z0-9_]*Alloc' . | xargs -n1 dirname | sort -u)
	SEXTANT_BENCH_SERIES=2000 SEXTANT_BENCH_SAMPLES=240 SEXTANT_BENCH_SPANS=20000 SEXTANT_BENCH_TRACE_REQUESTS=16 $(GO) test -run='^$$' -bench=. -benchtime=1x -count=1 -timeout 20m ./...

## staticcheck: staticcheck over the module. CI (CI=true) fails without it;
## elsewhere it is skipped with a message when not installed.
STATICCHECK_VERSION ?= v0.8.2
staticcheck:
	@sc=$$(command -v staticcheck || { f="$$($(GO) env GOPATH)/bin/staticcheck"; [ -x "$$f" ] && echo "$$f"; }); \
	if [ -n "$$sc" ]; then echo "$$sc ./..."; "$$sc" ./...; \
	elif [ "$$CI" = true ]; then echo "staticcheck is not installed: CI installs it (go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))"; exit 1; \
	else echo "staticcheck is not installed: skipped (go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))"; fi

## bench: the full benchmarks of docs/benchmarks.md (100 000 series × 360 steps,
## 10 M spans)
bench:
	$(GO) test -run='^$$' -bench=. -benchtime=2s -timeout 60m ./lib/... ./tsdb/... ./query/...
	$(GO) test -run='^$$' -bench=. -benchtime=5000x -timeout 60m ./tracing/spanstore
	$(GO) test -run='^$$' -bench=TraceIngest -benchtime=6000x -timeout 60m ./cmd/sextant

## bench-vs: side by side with VictoriaMetrics and Jaeger v2 (docs/benchmarks.md,
## "Side by side"): builds them from the Go module proxy into BENCH_VS_CACHE
## (once), then feeds the real binary (--fsync batch) and each peer the same
## workload, one after the other, and prints the ratios. Not in `make test`.
## BENCH_VS_SIZES=2000x60 BENCH_VS_SPANS=5000 is a smoke run of a minute (once built).
BENCH_VS_CACHE ?= $(HOME)/.cache/sextant-bench-vs
BENCH_VS_SIZES ?= 100000x360,1000000x60
BENCH_VS_SPANS ?= 100000
BENCH_VS_FLAGS ?=
bench-vs:
	@mkdir -p $(BENCH_VS_CACHE)
	$(GO) build -o $(BENCH_VS_CACHE)/sextant ./cmd/sextant
	$(GO) build -o $(BENCH_VS_CACHE)/sextant-load ./cmd/sextant-load
	$(BENCH_VS_CACHE)/sextant-load vs -sextant $(BENCH_VS_CACHE)/sextant -cache $(BENCH_VS_CACHE) \
		-sizes '$(BENCH_VS_SIZES)' -spans '$(BENCH_VS_SPANS)' $(BENCH_VS_FLAGS)

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
