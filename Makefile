# ChronicleWeaver: `make run` runs the service on throwaway local servers,
# `make verify` is the test command (CI runs it through .ci/run).
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
# Short fuzz run of the request decoder in `make verify`.
FUZZTIME ?= 20s
export RAPID_NOFAILFILE ?= 1

.PHONY: all build run deps fmt-check vet test fuzz verify verify-full bench report up down images-offline clean

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
	$(GO) vet $(PKGS)

test: deps
	$(GO) test -count=1 -timeout 15m $(PKGS)

fuzz:
	$(GO) test ./service/event -run '^$$' -fuzz FuzzDecodeRequest -fuzztime $(FUZZTIME)

verify: deps fmt-check vet build test fuzz
	@echo "verify: all green"

clean:
	rm -rf $(BIN) runs
