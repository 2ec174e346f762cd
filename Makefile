# streamprint — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# Debian packages the scripts use to generate test media (speech and MIDI renders for the
# corpus, sox for checks).
DEB_PACKAGES := espeak-ng fluidsynth fluid-soundfont-gm sox
# A C compiler: `pip install` builds the engine's compiled loops (server/streamprint/engine/_ckernels.c).
DEB_PACKAGES += gcc libc6-dev
# The C++ example client (clients/cpp) builds from Debian's gRPC.
DEB_PACKAGES += cmake g++ pkg-config libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
NODE_STAMP := clients/node/node_modules/.package-lock.json
BUF_STAMP := scripts/buf/node_modules/.package-lock.json
PYTEST_ARGS ?=

.PHONY: help setup run demo test check lint typecheck protos protos-check node-deps cpp-client models heads bench bench-heads bench-runtime bench-video fuzz soak calibrate clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

KERNELS_STAMP := $(VENV)/.kernels-stamp

$(STAMP): pyproject.toml setup.py clients/python/pyproject.toml
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,models]' -e clients/python
	touch $(STAMP)

# The compiled loops are rebuilt (in place, as the editable install does) when their source or flags change.
$(KERNELS_STAMP): server/streamprint/engine/_ckernels.c setup.py | $(STAMP)
	$(PY) -m pip install -q --no-deps -e .
	@PYTHONPATH=server $(PY) -c 'from streamprint.engine import compiled; compiled.warm_up()'
	touch $(KERNELS_STAMP)

setup: $(STAMP) $(KERNELS_STAMP) node-deps ## create .venv, install the project (building its C loops), dev tools, Debian and npm packages; verify the models (idempotent)
	@PYTHONPATH=server $(PY) -c 'from streamprint.engine import compiled; compiled.warm_up()' 2>/dev/null \
	  || { echo "rebuilding the compiled kernels"; $(PY) -m pip install -q --no-deps -e .; }
	@$(PY) scripts/export_models.py --verify >/dev/null || $(MAKE) --no-print-directory models

$(NODE_STAMP): clients/node/package-lock.json
	npm ci --prefix clients/node --no-audit --no-fund --loglevel=error

$(BUF_STAMP): scripts/buf/package-lock.json
	npm ci --prefix scripts/buf --no-audit --no-fund --loglevel=error

node-deps: $(NODE_STAMP) $(BUF_STAMP) ## npm ci for clients/node and scripts/buf (skipped when up to date)

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

protos: setup node-deps ## regenerate gRPC stubs from protos/, then buf lint + breaking
	$(PY) scripts/gen_protos.py
	scripts/check_protos.sh

protos-check: node-deps ## buf lint + buf breaking against the previous version of protos/
	scripts/check_protos.sh

cpp-client: setup ## build the C++ streaming example into build/cpp (incremental)
	cmake -S clients/cpp -B build/cpp -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/cpp -j2

check: lint typecheck protos-check test ## ruff, mypy, buf and the tests (what CI runs)

bench: setup ## engine benchmark against librosa (writes numbers to stdout; see docs/benchmarks.md)
	$(PY) scripts/bench_engine.py

models: $(STAMP) ## rebuild the models: FP32 export, INT8 quantization, accuracy gate (~2-5 min)
	$(PY) scripts/export_models.py
	$(PY) scripts/quantize.py
	$(PY) scripts/export_video_model.py
	$(PY) scripts/quantize.py --model video --clips 40

heads: $(STAMP) ## retrain the learned heads (needs the train extra: torch CPU), gate, manifest (~10 min)
	$(PY) -m pip install -q -e '.[train,models]'
	$(PY) scripts/train_heads.py
	$(PY) scripts/heads_gate.py --from-manifest --write-docs

bench-heads: setup ## learned heads vs HPSS + YIN: streaming CPU and the CLI vs librosa (docs/benchmarks.md)
	$(PY) scripts/bench_heads.py --write-docs --repeat 3

bench-runtime: setup ## runtime backends x precisions (writes docs/benchmarks.md "Runtime backends")
	$(PY) scripts/bench_runtime.py --write-docs

fuzz: setup ## long fuzzing run over decoders, request conversion and config parsing
	$(PY) scripts/fuzz.py

soak: setup ## 128 realtime streams for 30 minutes, RSS sampled (see docs/benchmarks.md)
	$(PY) scripts/soak.py

bench-video: setup ## video engine benchmark (720p30 H.264, decode included)
	$(PY) scripts/bench_video.py

calibrate: setup ## confidence calibration table over a generated corpus
	$(PY) scripts/calibrate_confidence.py

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis \
	  clients/node/node_modules scripts/buf/node_modules build/cpp \
	  server/streamprint/engine/_ckernels.*.so
