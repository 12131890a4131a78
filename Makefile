# donorsite — run `make help` for the targets. Every target sets up .venv when it is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The registry's torch and torchvision must be resolved together: never pick up a stray local
# CPU-only torch wheel from pip's find-links (torchvision would then fail to load its ops).
PIP    := PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/python -m pip
RAW    := data/raw
OUT    := data/processed
export PYTHONUNBUFFERED := 1

.PHONY: help install run test test-slow lint bench bench-cpu bench-gpu train synth contact-sheet clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "}; /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
	set -o pipefail; $(PIP) install --quiet -e '.[dev,ray]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $(STAMP)

install: $(STAMP) ## Create .venv (when missing) and install donorsite with its dev tools

run: $(STAMP) ## The main job: generate the demo study into data/raw when empty, then process it
	$(BIN)/donorsite run --raw $(RAW) --out $(OUT)

test: $(STAMP) ## Run the default (lean) test suite
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) ## Run the slow tests too
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: $(STAMP) ## Lint with ruff
	$(BIN)/ruff check calibration models pipeline tests

bench: $(STAMP) ## Benchmarks (JSON + a table): calibration, and the engine when it lands
	$(BIN)/donorsite bench --out $(OUT)/bench

bench-cpu: $(STAMP) ## CPU ms per photo per stage and process, bytes between processes, start-up (+ a GPU stand-in)
	$(BIN)/donorsite bench --cpu --out $(OUT)/bench

bench-gpu: ## The one-go GPU check (scripts/bench_gpu.sh; logs under $$OUT or /tmp/bench-gpu-out)
	PY=$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) bash scripts/bench_gpu.sh

train: $(STAMP) ## Reproduce the shipped starter model (see models/weights/*.md)
	$(BIN)/python -m models.recipes.starter

contact-sheet: $(STAMP) ## Regenerate docs/contact-sheet.jpg from a small synthetic study
	$(BIN)/donorsite synth /tmp/donorsite-contact --seed 3 --subjects 6 --size 1200x900 --force
	$(BIN)/python -m pipeline.synth.contact_sheet /tmp/donorsite-contact docs/contact-sheet.jpg

clean: ## Remove what the pipeline wrote to data/processed (never data/raw)
	find $(OUT) -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
