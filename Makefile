# meshdrop: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: install browser demo test unit lint pytest synth bench bench-generator bench-processes bench-gpu eval image clean

# Re-install only when the dependency lists change.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed

# Headless Chromium (Debian package) for the gallery's browser test; needs root and apt.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "could not install chromium: the gallery browser test will be skipped"

demo: install
	$(BIN)/meshdrop local run samples/*.jpg --out demo-out

# Style, layers (import-linter contracts in pyproject.toml) and types (pyright: strict on the
# contract and the Lambdas, basic elsewhere).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	pyright

pytest: install browser
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint pytest

# The inner loop: unit tests not marked slow, in parallel; 20 to 30 s on 2 idle cores.
unit: install
	$(BIN)/pytest -n 2 -q -m "not slow" tests/unit

synth: install
	npx cdk synth --quiet

bench: install
	$(BIN)/python -m meshdrop.bench

bench-generator: install
	$(BIN)/python -m gpu_container.meshgen.bench

# The generator on 100 photos (fast preset): a fresh process per photo, as one Batch job per
# upload does today, against one process for all (docs/cost.md).
bench-processes: install
	$(BIN)/python -m gpu_container.meshgen.bench_processes $(if $(WEIGHTS),--weights $(WEIGHTS))

# Full-size TripoSR (random weights unless WEIGHTS=dir): seconds per stage and peak memory per
# preset, on CUDA when present, else the CPU (minutes there).
bench-gpu: install
	$(BIN)/python -m gpu_container.meshgen.models.bench $(if $(WEIGHTS),--weights $(WEIGHTS))

eval: install
	$(BIN)/python -m gpu_container.meshgen.evaluation

# Needs a Docker daemon (not available on the development machines).
image:
	docker build -f gpu_container/Dockerfile -t meshdrop-generator .

clean:
	rm -rf cdk.out demo-out .pytest_cache
