# The two commands: `make repro` (set up, run the whole pipeline on the bundled
# synthetic catalog, print the results) and `make test` (set up, lint, test).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export DVC_NO_ANALYTICS := 1
# dvc.yaml runs `python stages/...`: it must be the environment's python.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test install lint clean-venv

repro: install
	$(BIN)/dvc repro
	@$(BIN)/dvc metrics show metrics/ingest.json
	@for f in reports/compare/*/comparison.md; do echo; cat "$$f"; done
	@echo; echo "Per-label metrics: metrics/<attribute>/<scheme>.json (dvc metrics show); figures: reports/compare/*/pr_curves.png, data/counts/*.png"

test: install lint
	@# pytest exits 5 when it collects no test: that is not a failure here.
	$(BIN)/python -m pytest; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

lint: install
	$(BIN)/ruff check .

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

clean-venv:
	rm -rf $(VENV)
