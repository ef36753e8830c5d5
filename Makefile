# One-command entry points. Each target builds .venv first when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo run test lint bench profile clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/reconcile demo

run: setup
	$(BIN)/reconcile run nightly

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check reconcile reports jobs tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# One bench scenario under pyinstrument, e.g.
#   make profile SCENARIO=report_nightly PARAMS='{"database_url": "sqlite:///var/bench/x.db", "out": "var/bench/p"}'
profile: setup
	$(BIN)/pyinstrument -m bench.scenarios $(SCENARIO) '$(PARAMS)'

clean:
	rm -rf $(VENV) var .pytest_cache
