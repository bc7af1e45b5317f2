# Weft — build, run and test the weftcol collector distribution.
#
#   make run    build weftcol and run it with distro/config.yaml
#   make test   every test: unit, integration and end-to-end (real services)
#
# Tools are pinned and built into .tools/ (ignored by git); the cache of
# installed test dependencies lives outside the repo (WEFT_CACHE, default
# ~/.cache/weft).

SHELL       := /bin/bash
GO          ?= go
OCB_VERSION := v0.161.0
TOOLS       := $(CURDIR)/.tools
OCB         := $(TOOLS)/ocb-$(OCB_VERSION)
MDATAGEN    := $(TOOLS)/mdatagen
STATICCHECK := $(TOOLS)/staticcheck
BIN         := bin/weftcol
CONFIG      ?= distro/config.yaml
TEST_FLAGS  ?= -count=1 -timeout 40m
BENCH_FLAGS ?= -benchtime 1s
BENCH_DATE  ?= $(shell date +%Y-%m-%d)
BENCH_OUT   ?= bench/results/$(BENCH_DATE)

# Everything the binary is built from; generated sources in _build/ are not.
GO_SOURCES := $(shell find . -name '*.go' -not -path './_build/*' -not -path './.tools/*' -not -path './tests/*' -not -name '*_test.go')
COMPONENT_METADATA := $(shell find receiver processor exporter extension -name metadata.yaml)

.PHONY: all build run test bench lint fmt generate services tools clean plugins

all: build

build: $(BIN)

$(BIN): $(OCB) builder-config.yaml go.mod go.sum $(GO_SOURCES)
	$(OCB) --config builder-config.yaml
	@mkdir -p $(dir $@)
	cp _build/weftcol $@

$(OCB):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	mv $(TOOLS)/builder $@

$(MDATAGEN) $(STATICCHECK): internal/tools/go.mod internal/tools/go.sum
	cd internal/tools && $(GO) build -o $(TOOLS)/ go.opentelemetry.io/collector/cmd/mdatagen honnef.co/go/tools/cmd/staticcheck

tools: $(OCB) $(MDATAGEN) $(STATICCHECK)

# Regenerate each component's internal/metadata package, generated tests and
# README status block from its metadata.yaml.
# Also regenerates the Pinpoint receiver's gRPC code from its .proto files
# (needs protoc: apt-get install protobuf-compiler).
generate: $(MDATAGEN)
	@for m in $(COMPONENT_METADATA); do echo "mdatagen $$m"; $(MDATAGEN) $$m || exit 1; done
	bash receiver/pinpointreceiver/internal/proto/generate.sh

run: build services
	@mkdir -p data
	$(BIN) --config $(CONFIG)

# Builds the example Wasm plugins (internal/wasmplugin/ABI.md) with the
# standard Go toolchain into bin/plugins/.
plugins:
	@mkdir -p bin/plugins
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o bin/plugins/example.wasm ./internal/wasmplugin/example

# Installs (Debian packages) and starts the local services Weft and its tests
# use. Idempotent.
services:
	bash tests/services.sh

test: build
	$(GO) test $(TEST_FLAGS) ./...

# Every Go benchmark, then the scenarios (storage in ClickHouse 18.16 and
# chDB 26.5, the pipeline at fixed rates, Pinpoint replay; one iteration
# each), then a report with charts in $(BENCH_OUT). A failed benchmark is
# listed in the report and fails the target after the report is written.
bench: build services
	@mkdir -p $(BENCH_OUT)
	@status=0; \
	$(GO) test -run '^$$' -bench . -skip Scenario -benchmem $(BENCH_FLAGS) -timeout 60m ./... 2>&1 | tee $(BENCH_OUT)/benchmarks.txt; \
	[ $${PIPESTATUS[0]} -eq 0 ] || status=1; \
	$(GO) test -run '^$$' -bench Scenario -benchtime 1x -timeout 60m ./exporter/smartclickhouseexporter/ ./tests/bench/ 2>&1 | tee $(BENCH_OUT)/scenarios.txt; \
	[ $${PIPESTATUS[0]} -eq 0 ] || status=1; \
	$(GO) run ./tests/bench/report -out $(BENCH_OUT) -date $(BENCH_DATE) $(BENCH_OUT)/benchmarks.txt $(BENCH_OUT)/scenarios.txt || status=1; \
	echo "report: $(BENCH_OUT)/report.md"; exit $$status

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin _build data
