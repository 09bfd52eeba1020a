# One task runner. `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# Some machines' pip configuration names local indexes that do not exist; its warnings are noise.
QUIET := grep -v "is ignored: it is neither a file nor a directory" || true
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: setup demo test screenshots lint typecheck serve worker beat migrate bench clean

setup: $(STAMP)  ## Install system packages and the virtualenv (idempotent)

$(STAMP): pyproject.toml constraints.txt scripts/system-deps.sh
	@scripts/system-deps.sh
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Nudge needs Python 3.11, found {sys.version.split()[0]}"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip 2> >($(QUIET) >&2)
	@echo "installing Python packages into $(VENV) (a new machine compiles llama.cpp once: about 5 minutes) …"
	@CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install -q -c constraints.txt -e ".[dev,embeddings,local-llm]" 2> >($(QUIET) >&2)
	@$(BIN)/python -c "import nudge, fastapi, sqlalchemy, psycopg, sklearn, llama_cpp, sentence_transformers" \
		|| { echo "install failed" >&2; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

demo: setup  ## Load the real sample data and show what Nudge does with it
	$(BIN)/nudge demo

test: setup  ## Run the test suite (starts its own PostgreSQL on 127.0.0.1)
	$(BIN)/pytest

screenshots: setup  ## The README's screenshots (docs/screenshots/): the browser tour of the demo's database
	NUDGE_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest tests/browser/test_tour.py -p no:cacheprovider -q

lint: setup  ## ruff (lint + format), mypy, import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

serve: setup  ## The API on http://127.0.0.1:8000
	$(BIN)/nudge serve

migrate: setup
	$(BIN)/nudge db upgrade

worker: setup  ## A Celery worker on every queue (NUDGE_REDIS_URL, else the SQLite broker under var/)
	$(BIN)/nudge worker

beat: setup  ## The Celery scheduler: retention runs and the per-minute backstops (run one per deployment)
	$(BIN)/nudge beat

bench: setup  ## Benchmarks; they print their figures
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
