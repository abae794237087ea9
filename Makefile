# Aurora's two commands: `make demo` and `make test`. Both install what is missing first.
# Build artefacts live outside the clone so repeated runs and CI reuse them.
CARGO_TARGET_DIR ?= $(HOME)/.cache/aurora-target
export CARGO_TARGET_DIR
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
SHELL := /bin/bash
AURORA := $(CARGO_TARGET_DIR)/release/aurora

.PHONY: setup build demo test lint bench install clean
PREFIX ?= $(HOME)/.local

setup:
	@scripts/setup

build: setup
	$(CARGO) build --release --locked

demo: build
	$(AURORA) demo

# The real-terminal test (tests/tui_tmux.rs) drives the release binary, built first; the
# tests' own extras (llama.cpp's server) come from `scripts/setup --for-tests`.
test: build
	@scripts/setup --for-tests
	@mkdir -p $(CARGO_TARGET_DIR)
	@set -o pipefail; AURORA_BIN=$(AURORA) $(CARGO) test --locked --no-fail-fast 2>&1 | tee $(CARGO_TARGET_DIR)/test.log; \
	  status=$$?; scripts/test-summary $(CARGO_TARGET_DIR)/test.log; exit $$status

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

install: build
	install -D -m 755 $(AURORA) $(PREFIX)/bin/aurora
	@echo "installed $(PREFIX)/bin/aurora"

bench: build
	bench/query_overhead
	$(CARGO) bench --locked --bench ingest
	$(CARGO) bench --locked --bench nl2sql
	$(CARGO) bench --locked --bench tui
	$(CARGO) bench --locked --bench dashboards
	$(CARGO) bench --locked --bench serve

clean:
	$(CARGO) clean
