# sandboxd: `make run` builds and shows it working; `make test` runs every test.
SHELL      := /bin/bash
GO         ?= go
GOFLAGS    ?=
export CGO_ENABLED := 0
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -s -w -X main.version=$(VERSION)
BINS       := bin/sandboxd bin/sandboxctl
PKGS       := ./...

.PHONY: all build run test test-unit test-e2e test-v2 test-python soak bench bench-python bench-web lint deps clean

all: build

build: $(BINS)

# The helper is a small program of its own, embedded in sandboxd and
# started once by the engine: every sandbox's init is a clone of it, which
# shares its memory, so it is kept far smaller than the daemon binary.
nsjail/sandboxd-helper: FORCE
	$(GO) build $(GOFLAGS) -trimpath -ldflags '-s -w' -o $@ ./cmd/sandboxd-helper

bin/sandboxd: nsjail/sandboxd-helper FORCE
	@mkdir -p bin
	$(GO) build $(GOFLAGS) -tags embedhelper -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/sandboxd

bin/%: FORCE
	@mkdir -p bin
	$(GO) build $(GOFLAGS) -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/$*

# The benchmark, a program of its own so that sandboxctl stays lean.
bin/sandboxd-bench: FORCE
	@mkdir -p bin
	$(GO) build $(GOFLAGS) -trimpath -ldflags '-s -w' -o $@ ./test/bench

FORCE:

# deps installs what the tests and the benchmark run inside sandboxes (gcc,
# g++, python3) from Debian's packages. Quick when they are there.
deps:
	@./scripts/deps.sh

run: build
	@./scripts/demo.sh

# Every test, as root on the real kernel: unit, cgroup and jail tests, and the
# end-to-end tests of the sandboxd binary.
test: deps build bin/sandboxd-bench
	$(GO) vet -tags embedhelper $(PKGS)
	@# One package at a time: the end-to-end tests assert that no process runs
	@# under a sandbox uid, which another package's sandboxes would break.
	SANDBOXD_BIN=$(CURDIR)/bin/sandboxd SANDBOXD_BENCH_BIN=$(CURDIR)/bin/sandboxd-bench $(GO) test -tags embedhelper -p 1 -count=1 -timeout 8m $(PKGS)
	@# The HTTP and OpenAPI tests again as nobody (with one supplementary
	@# group, which TestHTTPAllowedBySupplementaryGroup uses): they need no root.
	$(GO) test -c -tags embedhelper -o bin/daemon.test ./daemon
	tmp=$$(mktemp -d) && chown 65534:65534 $$tmp && \
	( cd daemon && TMPDIR=$$tmp setpriv --reuid=65534 --regid=65534 --groups=4242 \
		../bin/daemon.test -test.run '^(TestHTTP|TestOpenAPI)' -test.count=1 ); \
	rc=$$?; rm -rf $$tmp; exit $$rc
	$(MAKE) --no-print-directory test-python

# The Python client and its code_execution layer (api/python) against a real
# daemon, which the tests' conftest.py starts on a temp socket and stops;
# nothing is left behind (no bytecode, no pytest cache, no temp dirs).
PYTHON ?= /usr/bin/python3
test-python: deps build
	tmp=$$(mktemp -d) && cd api/python && SANDBOXD_BIN=$(CURDIR)/bin/sandboxd PYTHONDONTWRITEBYTECODE=1 \
		$(PYTHON) -m pytest -p no:cacheprovider --basetemp=$$tmp/pytest -q tests; \
	rc=$$?; rm -rf $$tmp; exit $$rc

# bench-python: execute_predictions against /v1/batch from Python and bare
# subprocess, 1,000 predictions at two workers (BENCHPYFLAGS, e.g. -n 200).
BENCHPYFLAGS ?=
bench-python: deps build
	SANDBOXD_BIN=$(CURDIR)/bin/sandboxd PYTHONDONTWRITEBYTECODE=1 $(PYTHON) api/python/bench.py $(BENCHPYFLAGS)

# soak runs SOAKJOBS mixed jobs (every verdict, cancels, disconnects,
# batches) through one daemon from many clients at once, then checks that
# nothing leaked and that the daemon's RSS and latency did not grow; it
# prints them at the start, middle and end. make test runs a short one.
SOAKJOBS ?= 20000
soak: deps build
	SANDBOXD_BIN=$(CURDIR)/bin/sandboxd SANDBOXD_SOAK_JOBS=$(SOAKJOBS) $(GO) test -tags embedhelper -count=1 \
		-run '^TestDaemonSoak$$' -timeout 90m -v ./test/

# The engine's root tests (cgroup, nsjail, sandboxd exec end to end) on pure
# cgroup v2, in a throwaway VM: Debian's cloud kernel under qemu, whatever
# this host's cgroup layout. See scripts/test-v2.sh.
test-v2: deps build
	@./scripts/test-v2.sh

# bench measures the daemon from outside against bare fork/exec and the
# namespace floor, and how its cost grows with the work, prints a table and
# the targets, and writes run/bench/bench.json and the plots (run/bench/*.png).
# BENCHFLAGS passes flags, e.g. BENCHFLAGS=-quick; see bin/sandboxd-bench -h.
BENCHFLAGS ?=
bench: deps build bin/sandboxd-bench
	bin/sandboxd-bench -sandboxd bin/sandboxd $(BENCHFLAGS)

# bench-web: the playground's WebSocket (execute -> first output line of
# print(1)) beside POST /v1/run of the same job, at 1 and 4 connections.
WEBBENCHFLAGS ?=
bench-web: deps build
	WEBBENCHFLAGS='$(WEBBENCHFLAGS)' ./scripts/bench-web.sh

# fuzz runs each fuzz target for FUZZTIME (make test runs their seed corpora).
FUZZTIME ?= 5m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeAndCheck$$' -fuzztime $(FUZZTIME) ./daemon
	$(GO) test -run '^$$' -fuzz '^FuzzCompiledMatchesDecide$$' -fuzztime $(FUZZTIME) ./seccomp

# make install, make uninstall, make test-systemd.
include dist/install.mk

lint: nsjail/sandboxd-helper
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet -tags embedhelper $(PKGS)

clean:
	rm -rf bin run nsjail/sandboxd-helper
