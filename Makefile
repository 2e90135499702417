# Interop Service. `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/interop
PKGS      := ./...
# The cluster's maintenance URL, from scripts/ensure-postgres.sh (which starts or installs
# PostgreSQL when none answers). The service uses its own database `interop` in that cluster;
# tests create and drop databases of their own.
PG_URL     = $(shell scripts/ensure-postgres.sh)
SERVICE_DB ?= interop

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_\/-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: check-go
check-go:
	@command -v $(GO) >/dev/null || { echo "Go 1.26+ is needed: https://go.dev/dl/ (or apt-get install golang-go on a recent Debian)"; exit 1; }

# Node.js runs the independent FHIR validator (tools/fhir-validate) and other projects' test
# peers; installed from Debian's packages when missing and we may.
.PHONY: check-node
check-node:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Node.js/npm missing: installing Debian's nodejs and npm"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null || \
	      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null; }; \
	  else echo "Node.js 20+ and npm are needed by make test: https://nodejs.org (or apt-get install nodejs npm)"; exit 1; fi; }

.PHONY: build
build: check-go ## Build bin/interop
	$(GO) build -o $(BIN) ./cmd/interop

.PHONY: run
run: build ## Start the whole service (embedded Temporal + UI, gateway, worker, MLLP on :2575)
	@url="$(PG_URL)"; [ -n "$$url" ] || exit 1; \
	export DATABASE_URL="$$(echo "$$url" | sed -E 's#/[^/?]*(\?|$$)#/$(SERVICE_DB)\1#')"; \
	echo "DATABASE_URL=$$DATABASE_URL"; \
	exec ./$(BIN) dev

.PHONY: test
test: check-go check-node lint ## Run make lint, then every test (real PostgreSQL, embedded Temporal, real sockets, Node.js peers), as parallel as the cluster's free connections allow
	@url="$(PG_URL)"; [ -n "$$url" ] || exit 1; \
	export TEST_DATABASE_URL="$$url" INTEROP_REQUIRE_NODE=1 \
	  INTEROP_TEST_DB_MAX_CONNS="$${INTEROP_TEST_DB_MAX_CONNS:-6}" INTEROP_TEST_DEV_DB_MAX_CONNS="$${INTEROP_TEST_DEV_DB_MAX_CONNS:-24}"; \
	flags="$$(scripts/test-parallelism.sh "$$url")"; \
	$(GO) test -count=1 -timeout 20m $$flags $(PKGS) && \
	$(GO) test -count=1 -race -timeout 10m ./internal/mllp/... ./internal/hl7v2/... ./internal/auth/... ./internal/routing/... ./internal/crypto/... ./internal/export/... && \
	$(GO) test -count=1 -race -timeout 5m -run 'TestMapConcurrentlyFromOneParse|TestFieldAccounting|TestGolden' ./internal/mapping

.PHONY: bench
bench: check-go ## Run the benchmarks: Go micro-benchmarks, then whole-system figures vs same-run baselines (bench/system, bench/gateway, bench/export)
	@url="$(PG_URL)"; [ -n "$$url" ] || exit 1; export TEST_DATABASE_URL="$$url"; \
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./internal/... ./gateway/... && \
	$(GO) run ./bench/system $(BENCH_SYSTEM_FLAGS) && \
	$(GO) run ./bench/gateway $(BENCH_GATEWAY_FLAGS) && \
	$(GO) run ./bench/export $(BENCH_EXPORT_FLAGS)

.PHONY: soak
soak: build ## Soak the whole service (bench/soak): 10 min of MLLP from 8 senders, a poison a minute, two kill -9s, a 60 s database stall; then every ACKed message must be stored once and settled (SOAK_FLAGS="-duration 3m -stall 15s")
	@url="$(PG_URL)"; [ -n "$$url" ] || exit 1; export TEST_DATABASE_URL="$$url"; \
	$(GO) run ./bench/soak -bin $(BIN) $(SOAK_FLAGS)

.PHONY: bench-hl7
bench-hl7: check-go ## HL7 v2 parser vs an independent Node parser on the same corpus (needs node + npm)
	bash bench/hl7/run.sh

.PHONY: fuzz
fuzz: check-go ## Fuzz the MLLP reader, HL7 parser, batch splitter and export kick-off parser (FUZZTIME each, default 60s)
	$(GO) test ./internal/mllp -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(or $(FUZZTIME),60s)
	$(GO) test ./internal/hl7v2 -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(or $(FUZZTIME),60s)
	$(GO) test ./internal/hl7v2 -run '^$$' -fuzz '^FuzzSplitBatch$$' -fuzztime $(or $(FUZZTIME),60s)
	$(GO) test ./internal/export -run '^$$' -fuzz '^FuzzParseKickoff$$' -fuzztime $(or $(FUZZTIME),60s)

# golangci-lint is pinned and built from source into ./bin (not a `tool` in go.mod, which would
# pull its ~200 modules into ours). Rebuilt only when missing, of another version, or built by
# another Go than the one installed (a linter built by an older Go refuses newer code).
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(CURDIR)/bin/golangci-lint

.PHONY: golangci-lint
golangci-lint: check-go ## Build the pinned golangci-lint into bin/ (skipped when it is there)
	@want="has version $(GOLANGCI_LINT_VERSION:v%=%) built with $$($(GO) env GOVERSION) "; \
	$(GOLANGCI_LINT) version 2>/dev/null | grep -qF "$$want" || { \
	  echo "building golangci-lint $(GOLANGCI_LINT_VERSION) into bin/"; \
	  GOBIN=$(CURDIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); }

.PHONY: lint
lint: check-go golangci-lint ## go vet, gofmt, go mod tidy check, workflowcheck, sqlc diff + vet, golangci-lint (.golangci.yml)
	$(GO) vet $(PKGS)
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) tool workflowcheck ./workflows/...
	$(GO) tool sqlc diff
	$(GO) tool sqlc vet
	$(GOLANGCI_LINT) run --allow-serial-runners $(PKGS)

.PHONY: generate
generate: check-go ## Regenerate sqlc code from db/queries and migrations
	$(GO) tool sqlc generate

.PHONY: verify
verify: check-go ## Check generated code is current (sqlc diff, sqlc vet; also part of make lint)
	$(GO) tool sqlc diff
	$(GO) tool sqlc vet

.PHONY: db/migrate
db/migrate: build ## Apply migrations to DATABASE_URL (or the local service database)
	@url="$${DATABASE_URL:-}"; if [ -z "$$url" ]; then url="$$(echo "$(PG_URL)" | sed -E 's#/[^/?]*(\?|$$)#/$(SERVICE_DB)\1#')"; fi; \
	DATABASE_URL="$$url" ./$(BIN) migrate up --create-database

.PHONY: db/new-migration
db/new-migration: ## Create migrations/NNNNNN_<name>.{up,down}.sql (name=...)
	@[ -n "$(name)" ] || { echo "usage: make db/new-migration name=add_something"; exit 1; }
	@last=$$(ls migrations/*.up.sql | sed -E 's#.*/([0-9]{6})_.*#\1#' | sort | tail -1); \
	next=$$(printf '%06d' $$((10#$$last + 1))); \
	touch migrations/$${next}_$(name).up.sql migrations/$${next}_$(name).down.sql; \
	echo "created migrations/$${next}_$(name).{up,down}.sql"

.PHONY: clean
clean: ## Remove build output (keeps .data)
	rm -rf bin
