# ChronicleWeaver. The two commands a newcomer needs:
#   make run      the service on throwaway local PostgreSQL + Redis (no Docker)
#   make verify   the test command (CI runs it through .ci/run)
SHELL := /bin/bash
GO ?= go
BIN := bin
# Short fuzz run of the request decoder in `make verify`.
FUZZTIME ?= 20s
export RAPID_NOFAILFILE ?= 1
CHRONICLE := $(GO) run ./harness/cmd/chronicle

.PHONY: all build run deps fmt-check vet test properties fuzz verify-suite bench-smoke verify-docker verify-subject verify verify-full \
	bench peers report images-offline up down clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/chronicleweaver ./service/cmd/chronicleweaver

deps:
	@service/devenv/ensure-deps.sh

run: deps
	$(GO) run ./service/cmd/chronicleweaver-dev

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Unit and integration tests (and the docker backend and compose smoke
# tests where a Docker daemon answers). -short leaves out the fault suite;
# the fault suite and the properties run in their own steps below.
test: deps
	$(GO) test -short -count=1 -timeout 15m $$($(GO) list ./... | grep -v '/properties$$')

# The tests below write results/NAME.json (harness/results); the command
# line renders results/NAME.md from it (harness/report), also when the tests
# failed, so the Markdown says what failed. The target fails when the tests
# (or the rendering) did.
#   $(call tested,TEST COMMAND,NAME)   (NAME: bench, verify or properties)
tested = $(1); st=$$?; $(CHRONICLE) report --md $(2) --results results || st=1; exit $$st

# Property tests (bounded; CHRONICLE_FULL=1 for the long run), with the
# planted-bug detection; writes results/properties.*.
properties: deps
	$(call tested,CHRONICLE_RESULTS=$(CURDIR)/results $(GO) test -count=1 -timeout 20m ./properties/,properties)
	@sed -n "/^| Property/,/^$$/p" results/properties.md

fuzz:
	$(GO) test ./service/event -run '^$$' -fuzz FuzzDecodeRequest -fuzztime $(FUZZTIME)

# The fault scenarios and the planted-bug controls; writes results/verify.*.
verify-suite: deps
	$(call tested,CHRONICLE_RESULTS=$(CURDIR)/results $(GO) test -count=1 -timeout 30m -run TestVerify -v ./harness/verify,verify)

# The benchmark scenarios of suite bench-smoke (scenarios/suites.yaml), a
# few seconds each, through the checker.
bench-smoke: deps
	$(CHRONICLE) bench --smoke --suite bench-smoke --out runs/bench-smoke

# The fault scenarios that must also hold on the docker backend (skipped
# with a message when no Docker daemon answers; the docker tests of
# harness/env and the compose smoke test run in `test`).
verify-docker: build
	@if docker info >/dev/null 2>&1; then \
		$(CHRONICLE) run --backend docker --smoke --scenario crash-service && \
		$(CHRONICLE) run --backend docker --smoke --scenario crash-redis; \
	else echo "verify-docker: skipped: no Docker daemon answers"; fi

# The pluggable subject under test, with nothing outside the repository:
# a fault scenario with our own binary run through --service-cmd (local
# backend) and, where a Docker daemon answers, our image through
# --service-image (docker backend), both read through
# subjects/chronicleweaver.yaml.
verify-subject: build
	$(CHRONICLE) run --smoke --scenario crash-service --service-cmd '$(CURDIR)/$(BIN)/chronicleweaver'
	@if docker info >/dev/null 2>&1; then \
		docker build -q -f service/Dockerfile -t chronicleweaver:verify-subject $(BIN) >/dev/null && \
		$(CHRONICLE) run --smoke --backend docker --scenario crash-service --service-image chronicleweaver:verify-subject; \
	else echo "verify-subject: docker part skipped: no Docker daemon answers"; fi

verify: deps fmt-check vet build test fuzz properties verify-suite bench-smoke verify-docker verify-subject
	$(CHRONICLE) report
	@echo "verify: all green"

# Every fault scenario and property at full length.
verify-full: deps fmt-check vet build
	$(call tested,CHRONICLE_FULL=1 CHRONICLE_RESULTS=$(CURDIR)/results $(GO) test -count=1 -timeout 60m ./properties/,properties)
	$(call tested,CHRONICLE_FULL=1 CHRONICLE_RESULTS=$(CURDIR)/results $(GO) test -count=1 -timeout 90m -run TestVerify -v ./harness/verify,verify)
	$(CHRONICLE) report

# Regenerates results/bench.md, results/bench.json and results/plots/.
bench: deps
	$(CHRONICLE) bench --out results
	$(CHRONICLE) report --repo

# The comparison with other implementations of the contract (README,
# "Judging another implementation"): PEER_SRC is a checkout of the original
# design (visoredkon/DistributedChronicleWeaver), PEER2_SRC (optional) one
# of 11221055/UAS_Sister_A. Builds their images when missing (a few minutes
# the first time), runs the peers suite of scenarios/suites.yaml against
# ours and each of them, and writes results/peers.md and results/peers.json.
# PEERS_FLAGS passes more (e.g. --smoke, --only crash-service).
peers:
	@if [ -z "$(PEER_SRC)" ]; then echo "make peers: set PEER_SRC to a checkout of the original (git clone https://github.com/visoredkon/DistributedChronicleWeaver), e.g. make peers PEER_SRC=../DistributedChronicleWeaver"; exit 2; fi
	@$(MAKE) --no-print-directory deps build
	$(CHRONICLE) peers --out results --subject chronicleweaver --subject 'original=$(PEER_SRC)' \
		$(if $(PEER2_SRC),--subject 'uas-sister-a=$(PEER2_SRC)') $(PEERS_FLAGS)
	$(CHRONICLE) report --repo

# Rewrites the generated sections of REPORT.md from results/*.json.
report:
	$(CHRONICLE) report --repo

# Containers: images that build without a registry, and the compose stack.
images-offline:
	harness/images/build-offline.sh

up: build
	harness/images/compose.sh up -d --build --wait

down:
	harness/images/compose.sh down -v --remove-orphans

clean:
	rm -rf $(BIN) runs
