# ChronicleWeaver. The two commands a newcomer needs:
#   make run      the service on throwaway local PostgreSQL + Redis (no Docker)
#   make verify   the test command (CI runs it through .ci/run)
# Each step that takes more than a few seconds says what it does and about
# how long it takes (2 cores) before it starts.
SHELL := /bin/bash
GO ?= go
BIN := bin
# Short fuzz run of the request decoder in `make verify`.
FUZZTIME ?= 20s
export RAPID_NOFAILFILE ?= 1
# The harness's command line, built by the `chronicle` step.
CHRONICLE := $(BIN)/chronicle
# Where `make verify` writes its tables (and make properties, verify-suite
# and bench-smoke, run alone): under runs/, which git ignores. results/ and
# REPORT.md are written only by the published runs: make verify-full,
# make bench, make peers and make report.
OUT ?= runs/verify
# `make run` listens on 127.0.0.1 (this machine only) unless CHRONICLE_BIND
# says otherwise: `make run CHRONICLE_BIND=0.0.0.0` listens on every
# interface (the same variable exposes the compose stack's port).
CHRONICLE_BIND ?= 127.0.0.1
# $(call say,WHAT): announce a step, with the clock time.
say = @printf '\n== %s  [%s]\n' "$(1)" "$$(date +%T)"
# Drops go test -v's PAUSE and CONT lines (line by line: they stream).
NOPAUSE := grep --line-buffered -v -e '^=== \(PAUSE\|CONT\)'
GOBUILD := service/devenv/gobuild.sh

.PHONY: all build chronicle run deps fmt-check vet test properties fuzz verify-suite bench-smoke verify-docker \
	verify-subject verify verify-full bench peers soak report images-offline up down clean

all: build

build:
	@CGO_ENABLED=0 $(GOBUILD) $(BIN)/chronicleweaver ./service/cmd/chronicleweaver -trimpath

chronicle:
	@$(GOBUILD) $(CHRONICLE) ./harness/cmd/chronicle

deps:
	@service/devenv/ensure-deps.sh

# A direct child of make (no shell in between), so Ctrl-C and SIGTERM reach
# it: it stops PostgreSQL and Redis, deletes their data, prints one
# "stopped" line and exits 0.
run: deps
	@$(GOBUILD) $(BIN)/chronicleweaver-dev ./service/cmd/chronicleweaver-dev
	@$(BIN)/chronicleweaver-dev -listen $(CHRONICLE_BIND)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(call say,vet: go vet ./... (compiles every package: 2-3 min the first time on 2 cores; about 30 s after))
	$(GO) vet ./...

# Unit and integration tests, then the packages that build container
# images (on their own, -v: they say what they build while they build it).
# -short leaves out the fault suite; the fault suite and the properties run
# in their own steps below.
DOCKER_PKGS := ./harness/env ./harness/compose
test: deps
	$(call say,test: unit and integration tests against real PostgreSQL and Redis (about 2.5 min on 2 cores; one ok line per package as it ends))
	$(GO) test -short -count=1 -timeout 15m $$($(GO) list ./... | grep -v -e '/properties$$' $(patsubst ./%,-e '/%$$',$(DOCKER_PKGS)))
	$(call say,test: harness/env and harness/compose: docker backend and compose smoke (they build the service image and start containers: about 3 min on 2 cores plus 1-2 min if the offline images must be built; skipped without a Docker daemon))
	$(GO) test -short -count=1 -timeout 15m -p 1 -v $(DOCKER_PKGS) 2>&1 | $(NOPAUSE); exit $${PIPESTATUS[0]}

# The tests below write OUT/NAME.json (harness/results); the command line
# renders OUT/NAME.md from it (harness/report), also when the tests failed,
# so the Markdown says what failed. The target fails when the tests (or the
# rendering) did.
#   $(call tested,TEST COMMAND,NAME,DIR)   (NAME: bench, verify or properties)
tested = $(1); st=$$?; $(CHRONICLE) report --md $(2) --results $(3) || st=1; exit $$st

# Property tests (bounded; CHRONICLE_FULL=1 for the long run), with the
# planted-bug detection; writes OUT/properties.*. -v streams each
# property's progress (checks done / total) as plain lines.
properties: deps chronicle
	$(call say,properties: the property tests and their planted bugs on real environments (about 4.5 min on 2 cores; a progress line per property every 10 s))
	$(call tested,CHRONICLE_RESULTS=$(CURDIR)/$(OUT) $(GO) test -count=1 -timeout 20m -v ./properties/ 2>&1 | $(NOPAUSE); test $${PIPESTATUS[0]} = 0,properties,$(OUT))
	@sed -n "/^| Property/,/^$$/p" $(OUT)/properties.md
	@echo "properties: tables in $(OUT)/properties.md"

fuzz:
	$(call say,fuzz: the request decoder for $(FUZZTIME) (plus about 30 s of compiling))
	$(GO) test ./service/event -run '^$$' -fuzz FuzzDecodeRequest -fuzztime $(FUZZTIME)

# The fault scenarios and the planted-bug controls; writes OUT/verify.*.
verify-suite: deps chronicle
	$(call say,fault suite: the verify scenarios in smoke mode and the planted-bug controls (about 8.5 min on 2 cores, controls two at a time; each scenario prints its phases: start; load or faults; drain; check))
	$(call tested,CHRONICLE_RESULTS=$(CURDIR)/$(OUT) $(GO) test -count=1 -timeout 30m -run TestVerify -v ./harness/verify,verify,$(OUT))

# The benchmark scenarios of suite bench-smoke (scenarios/suites.yaml), a
# few seconds each, through the checker. It proves the plumbing and the
# checker, not the machine's speed: a run error or an invalid run fails it,
# a latency bound missed even at a search's lowest rate is recorded in
# OUT/bench.md and does not.
bench-smoke: deps chronicle
	$(call say,bench-smoke: the bench-smoke scenarios in smoke mode (about 1 min))
	$(CHRONICLE) bench --smoke --suite bench-smoke --out $(OUT)

# The fault scenarios that must also hold on the docker backend (skipped
# with a message when no Docker daemon answers; the docker tests of
# harness/env and the compose smoke test run in `test`). crash-service runs
# our image through --service-image, read through
# subjects/chronicleweaver.yaml (the pluggable subject on docker, as
# verify-subject is on the local backend); crash-redis runs the image the
# backend builds itself.
verify-docker: build chronicle
	@if docker info >/dev/null 2>&1; then \
		printf '\n== %s  [%s]\n' "verify-docker: crash-service (our image through --service-image) and crash-redis on containers (about 3 min)" "$$(date +%T)"; \
		docker build -q -f service/Dockerfile -t chronicleweaver:verify-subject $(BIN) >/dev/null && \
		$(CHRONICLE) run --backend docker --smoke --scenario crash-service --service-image chronicleweaver:verify-subject && \
		$(CHRONICLE) run --backend docker --smoke --scenario crash-redis; \
	else echo "verify-docker: skipped: no Docker daemon answers"; fi

# The pluggable subject under test, with nothing outside the repository:
# a fault scenario with our own binary run through --service-cmd (local
# backend), read through subjects/chronicleweaver.yaml (verify-docker runs
# our image through --service-image).
verify-subject: build chronicle
	$(call say,verify-subject: crash-service with our binary through --service-cmd (about 1 min))
	$(CHRONICLE) run --smoke --scenario crash-service --service-cmd '$(CURDIR)/$(BIN)/chronicleweaver'

# `make verify` writes no tracked file: its tables go to OUT (runs/), and it
# checks that REPORT.md is current with the committed results/.
VERIFY_START := $(shell date +%s)
verify: deps fmt-check vet build chronicle test fuzz properties verify-suite bench-smoke verify-docker verify-subject
	$(call say,report: REPORT.md current with results/?)
	$(CHRONICLE) report --check
	@echo
	@echo "verify: all green in $$(( ($$(date +%s) - $(VERIFY_START)) / 60 ))m$$(( ($$(date +%s) - $(VERIFY_START)) % 60 ))s."
	@echo "verify: this run's tables are in $(OUT)/ (verify.md, properties.md, bench.md); results/ and REPORT.md are unchanged"
	@echo "verify: (make verify-full, make bench and make report write those). runs/ holds $$(du -sh runs | cut -f1)."

# Every fault scenario and property at full length: the published results.
verify-full: deps fmt-check vet build chronicle
	$(call say,verify-full: every property then every fault scenario at full length (the fault suite alone took 19 min on 2 cores in the published run); writes results/)
	$(call tested,CHRONICLE_FULL=1 CHRONICLE_RESULTS=$(CURDIR)/results $(GO) test -count=1 -timeout 60m -v ./properties/ 2>&1 | $(NOPAUSE); test $${PIPESTATUS[0]} = 0,properties,results)
	$(call tested,CHRONICLE_FULL=1 CHRONICLE_RESULTS=$(CURDIR)/results $(GO) test -count=1 -timeout 90m -run TestVerify -v ./harness/verify,verify,results)
	$(CHRONICLE) report

# Regenerates results/bench.md, results/bench.json and results/plots/.
bench: deps chronicle
	$(call say,bench: every benchmark scenario at full length (about 8 min on 2 cores in the published run); writes results/)
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
	@$(MAKE) --no-print-directory deps build chronicle
	$(CHRONICLE) peers --out results --subject chronicleweaver --subject 'original=$(PEER_SRC)' \
		$(if $(PEER2_SRC),--subject 'uas-sister-a=$(PEER2_SRC)') $(PEERS_FLAGS)
	$(CHRONICLE) report --repo

# The soak (not in make verify): the soak scenario (scenarios/soak.yaml,
# suite soak) for 30 minutes at half the sustained request rate with a
# service kill, a Redis kill or a PostgreSQL restart every minute or so,
# checked like any scenario, while the harness samples the service's RSS
# and goroutines, Redis's memory, the PostgreSQL tables and the ledger's
# rows; writes results/soak.json, results/soak.md and
# results/plots/soak-*.png. SOAK_DURATION=45m stretches it (faults
# included); SOAK_FLAGS=--smoke is the short form (about 4 min), and
# SOAK_FLAGS='--smoke --out runs/soak' keeps it out of results/.
SOAK_FLAGS ?=
soak: deps chronicle
	$(call say,soak: the soak scenario for $${SOAK_DURATION:-30m} (smoke: about 4 min) with faults every minute or so; writes results/soak.*)
	$(CHRONICLE) soak $(SOAK_FLAGS)

# Rewrites the generated sections of REPORT.md from results/*.json.
report: chronicle
	$(CHRONICLE) report --repo

# Containers: images that build without a registry, and the compose stack.
images-offline:
	$(call say,images-offline: Debian bookworm PostgreSQL and Redis images (1-2 min the first time; nothing to do when up to date))
	harness/images/build-offline.sh

# compose.sh says which image it builds: the service's (from bin/), and the
# offline PostgreSQL and Redis images when the official ones cannot be
# pulled. A failed `make up` removes what it created.
up: build
	$(call say,up: the compose stack (PostgreSQL, Redis, the service on $(CHRONICLE_BIND):$${CHRONICLE_PORT:-8080}))
	@CHRONICLE_BIND=$(CHRONICLE_BIND) harness/images/compose.sh up -d --build --wait

down:
	harness/images/compose.sh down -v --remove-orphans

clean:
	rm -rf runs $(BIN)/chronicleweaver $(BIN)/chronicleweaver-dev $(BIN)/chronicle
