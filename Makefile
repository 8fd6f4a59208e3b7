# Two commands do everything on a fresh machine: `make study` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
STAMP := $(VENV)/.installed

.PHONY: study test unit nbval install kernel benchmark clean

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or set PY=...)"; exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name ecgnb --display-name "ecgnb (.venv)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

## Run the whole study (notebooks 01.. in order) for PROFILE (default quick).
study: $(STAMP)
	$(BIN)/python -m ecgnb study --profile $(PROFILE)

## Run the whole test suite (includes the quick study, run in a temporary folder).
test: $(STAMP)
	$(BIN)/python -m pytest -q

## Unit tests only (no notebook runs): a few minutes.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## The notebooks as nbval sees them (quick profile, each run in place; errors fail).
nbval: $(STAMP)
	$(BIN)/python -m pytest -q --nbval-lax notebooks/ -p no:cacheprovider

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_render.py

clean:
	rm -rf data/quick reports/quick/executed
