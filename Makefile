PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test check venv dev clean browser mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q -e .

dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

demo: venv
	$(BIN)/recoghub demo

check: dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# The dashboard's browser tests drive Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); } \
		|| echo "chromium not installed: browser tests will be skipped (apt-get install chromium)"

test: check browser
	$(BIN)/pytest -q -p no:cacheprovider -n 2

# Mutation testing (not part of `test`): mutmut mutates gateway/protocol, gateway/scoring, the
# run engine's statements (runs/engine/store.py, results.py) and result paging (config in
# pyproject.toml), then prints the kill figure per module. Results are kept in mutants/, so a
# second run only checks what changed.
# The engine's database tests run on SQLite only; MUTATION_PYTEST="" adds PostgreSQL.
MUTATION_PYTEST ?= -m "not postgres" --hypothesis-profile=mutation
MUTATION_JOBS ?= 2
mutation: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,mutation]'
	PYTEST_ADDOPTS='$(MUTATION_PYTEST)' nice -n 10 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(BIN)/python -m tests.mutation_report

clean:
	rm -rf $(VENV) *.egg-info mutants
