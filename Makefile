# mediagate — the only entry point for building, running and testing.
# `make help` lists the targets.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
BIN         := bin/mediagate
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Tests time out well inside CI's budget; the whole suite must stay < 25 min.
# Packages run one at a time (-p 1): the real-peer tests measure timing and
# level, and two of them sharing the 2 cores would measure each other.
TEST_TIMEOUT ?= 20m
FUZZTIME    ?= 60s
# Minimizing a new input costs O(n²) runs for n bytes (Go's minimizer tries
# every byte range): bounded, so a large input cannot eat the whole FUZZTIME.
FUZZMINIMIZETIME ?= 10s

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: bootstrap
bootstrap: ## install the Debian packages the build and the tests need (idempotent)
	@scripts/bootstrap

.PHONY: build
build: ## build bin/mediagate
	@scripts/bootstrap --run
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mediagate

.PHONY: run
run: build ## start one node on the embedded defaults (no config file, no Redis)
	@echo "mediagate: starting on embedded defaults — http://localhost:8080/healthz, /metrics; Ctrl-C stops"
	./$(BIN) serve

.PHONY: test
test: bootstrap ## gofmt and vet, then every test with the race detector
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: bench
bench: bootstrap ## run the benchmarks (-benchmem), per 20 ms frame unless named otherwise
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# bench-load's scale: full (the issue's sizes: 100, 500, 1000 callers) or
# small (20 callers, a quick check); LOAD_WINDOW is each run's measurement.
LOAD_SCALE  ?= full
LOAD_WINDOW ?= 10s

.PHONY: bench-load
bench-load: ## capacity and latency under load, side by side with Janus AudioBridge → bench/results/latest.json
	@scripts/bootstrap --bench
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mediagate
	$(GO) run ./cmd/mediagate-load suite -bin $(BIN) -janus janus -scale $(LOAD_SCALE) \
	  -duration $(LOAD_WINDOW) -json bench/results/latest.json

.PHONY: fuzz
fuzz: bootstrap ## run each fuzz target for FUZZTIME (default 60s; FUZZMINIMIZETIME 10s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg; \
	  done; \
	done

.PHONY: lint
lint: ## gofmt, go vet, staticcheck (pinned)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

.PHONY: clean
clean: ## remove build output
	rm -rf bin
