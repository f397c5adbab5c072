# signalbridge — every target works on a fresh clone; tools are pinned and installed into .bin/.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

BIN      := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)
MODULES  := libs $(sort $(patsubst %/go.mod,%,$(wildcard services/*/go.mod)))

BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION        := v0.8.2
KUSTOMIZE_VERSION          := v5.8.2

GO_TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

## ---- tools -------------------------------------------------------------------------------
$(BIN)/buf-$(BUF_VERSION):
	GOBIN=$(BIN) GOWORK=off go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(BIN)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(BIN) GOWORK=off go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(BIN)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(BIN) GOWORK=off go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
$(BIN)/staticcheck-$(STATICCHECK_VERSION):
	GOBIN=$(BIN) GOWORK=off go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@
$(BIN)/kustomize-$(KUSTOMIZE_VERSION):
	GOBIN=$(BIN) GOWORK=off go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@touch $@

PROTO_TOOLS := $(BIN)/buf-$(BUF_VERSION) $(BIN)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION) $(BIN)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)

.PHONY: tools
tools: $(PROTO_TOOLS) $(BIN)/staticcheck-$(STATICCHECK_VERSION) $(BIN)/kustomize-$(KUSTOMIZE_VERSION) ## install the pinned tools into .bin/

## ---- contracts ---------------------------------------------------------------------------
.PHONY: proto
proto: $(PROTO_TOOLS) ## format, lint and generate the protobuf code into libs/gen
	buf format -w
	buf lint
	buf generate

.PHONY: proto-check
proto-check: $(PROTO_TOOLS) ## fail on unformatted protos, lint errors, breaking changes or stale generated code
	buf format -d --exit-code
	buf lint
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		echo "buf breaking --against .git#branch=main"; buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no main branch with buf.yaml to compare against; skipped"; fi
	buf generate
	@if ! git diff --quiet -- libs/gen || [ -n "$$(git ls-files --others --exclude-standard libs/gen)" ]; then \
		echo "generated code in libs/gen is stale: run 'make proto' and commit the result"; \
		git status --short libs/gen; exit 1; fi
	@echo "proto-check: ok"

## ---- Go ------------------------------------------------------------------------------------
.PHONY: fmt
fmt: ## gofmt every module
	gofmt -s -w $(MODULES)

.PHONY: lint
lint: $(BIN)/staticcheck-$(STATICCHECK_VERSION) ## gofmt check, go vet and staticcheck on every module
	@out=$$(gofmt -s -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "vet+staticcheck $$m"; (cd $$m && go vet ./... && staticcheck ./...); done

.PHONY: standalone
standalone: ## every module builds and is tidy on its own (GOWORK=off)
	@for m in $(MODULES); do echo "standalone $$m"; (cd $$m && GOWORK=off go mod tidy -diff && GOWORK=off go build ./... && GOWORK=off go vet ./... >/dev/null); done

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p bin
	@for d in services/*/cmd/*/; do n=$$(basename $$d); echo "build $$n"; go build -o bin/$$n ./$$d; done

.PHONY: test-go
test-go: ## go test -race on every module (needs Redis at 127.0.0.1:6379 or REDIS_URL)
	@for m in $(MODULES); do echo "test $$m"; (cd $$m && go test $(GO_TEST_FLAGS) ./...); done

.PHONY: test
test: lint standalone proto-check k8s-render test-go ## everything CI checks

BENCH_N        ?= 200000
BENCH_MEMORY_N ?= 1000000
# matcher: signals over companies (warm matching); the cold-start phase is always 1,000 domains.
MATCHER_BENCH_N         ?= 1000000
MATCHER_BENCH_COMPANIES ?= 50000
# score-sync: accounts in the delta phase and the share changed; companies in the batch and
# import phases.
SCORESYNC_BENCH_ACCOUNTS ?= 1000000
SCORESYNC_BENCH_CHANGED  ?= 8
SCORESYNC_BENCH_BATCH_N  ?= 300000
SCORESYNC_BENCH_IMPORT_N ?= 1000000

.PHONY: bench
bench: ## benchmarks, printed as ratios against a baseline measured in the same run
	go run ./services/ingest/cmd/ingest-bench -n $(BENCH_N) -memory-n $(BENCH_MEMORY_N)
	go run ./services/webhook-receiver/cmd/webhook-bench
	go run ./services/matcher/cmd/matcher-bench -n $(MATCHER_BENCH_N) -companies $(MATCHER_BENCH_COMPANIES)
	@# One process pair per phase: a phase's NATS and MappingService state must not weigh on the next.
	for phase in delta batch import; do \
		go run ./services/score-sync/cmd/scoresync-bench -phases $$phase -accounts $(SCORESYNC_BENCH_ACCOUNTS) \
			-changed-pct $(SCORESYNC_BENCH_CHANGED) -batch-n $(SCORESYNC_BENCH_BATCH_N) -import-n $(SCORESYNC_BENCH_IMPORT_N) || exit 1; \
	done
	cd libs && go test -run '^$$' -bench 'PublishBatch|PublishAsync' -benchtime 2x ./natsx/
	cd libs && go test -run '^$$' -bench GovernedBatchUpdate -benchtime 1x ./hubspot/

.PHONY: k8s-render
k8s-render: $(BIN)/kustomize-$(KUSTOMIZE_VERSION) ## render every kustomize overlay
	@if [ -x k8s/render.sh ]; then KUSTOMIZE=$(BIN)/kustomize k8s/render.sh; else echo "k8s/render.sh missing"; exit 1; fi

## ---- run -----------------------------------------------------------------------------------
.PHONY: run
run: ## the whole system in one process (embedded NATS, in-memory cache, demo portal)
	go run ./services/devstack/cmd/devstack $(ARGS)

.PHONY: clean
clean: ## remove build output and local data
	rm -rf bin .data
