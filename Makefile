PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test check venv dev clean browser mutation

# pip's output (and the WARNINGs a machine's own pip configuration may add) goes to
# $(PIP_LOG), printed only if the install fails: `make demo` shows the demo, not pip.
PIP_LOG := $(VENV)/pip.log
PIP := $(BIN)/pip install -q --disable-pip-version-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip >$(PIP_LOG) 2>&1 || { cat $(PIP_LOG); exit 1; }

venv: $(BIN)/python
	@echo "installing recoghub into $(VENV) (pip's output: $(PIP_LOG))"
	@$(PIP) -e . >>$(PIP_LOG) 2>&1 || { cat $(PIP_LOG); exit 1; }

dev: $(BIN)/python
	$(PIP) -e '.[dev]'

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
	$(PIP) -e '.[dev,mutation]'
	PYTEST_ADDOPTS='$(MUTATION_PYTEST)' nice -n 10 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(BIN)/python -m tests.mutation_report

clean:
	rm -rf $(VENV) *.egg-info mutants
