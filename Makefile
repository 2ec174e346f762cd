# streamprint — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# Debian packages the scripts use to generate test media (speech for the corpus, sox for checks).
DEB_PACKAGES := espeak-ng sox
PYTEST_ARGS ?=

.PHONY: help setup run demo test check lint typecheck protos bench calibrate clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -e clients/python
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project, dev tools and Debian packages (idempotent)

run: setup ## start the gRPC server on 127.0.0.1:50051 (SIGTERM/Ctrl-C drains and stops)
	$(PY) -m streamprint serve

demo: setup ## stream a generated demo clip through the offline CLI
	$(PY) -m streamprint fingerprint --stream --json $$($(PY) scripts/make_demo_clip.py)

test: setup ## set up if needed, then run the test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup ## ruff
	$(VENV)/bin/ruff check server clients scripts tests

typecheck: setup ## mypy --strict on the server and the client
	$(VENV)/bin/mypy
	cd clients/python && ../../$(VENV)/bin/mypy

protos: setup ## regenerate gRPC stubs from protos/ and buf-lint them
	$(PY) scripts/gen_protos.py
	npx --yes @bufbuild/buf lint protos

check: lint typecheck test ## ruff, mypy and the tests (what CI runs)

bench: setup ## engine benchmark against librosa (writes numbers to stdout; see docs/benchmarks.md)
	$(PY) scripts/bench_engine.py

calibrate: setup ## confidence calibration table over a generated corpus
	$(PY) scripts/calibrate_confidence.py

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
