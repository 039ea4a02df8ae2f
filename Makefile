# `make help` lists the targets; README.md explains `make run` and `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff
STAMP := $(VENV)/.requirements.stamp
TEST_STAMP := $(VENV)/.requirements-test.stamp
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Test processes (pytest-xdist); 0 runs the tests in pytest's own process, one after another.
# Two: CI's machine has 2 CPUs, and each process takes a Redis database of BROKER_URL's
# downwards (tests/settings.py), so BROKER_URL must name database 1 or higher.
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help deps test-deps builder-tools lint fmt migrate run worker test bench bench-pulp clean fresh-check

help: ## List the targets
	@echo "Usage: make <target> [HOST=$(HOST)] [PORT=$(PORT)] [PYTEST_WORKERS=2] [PYTEST_ARGS='-x']"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# A new venv needs the system tools checked first: on Debian, `python3 -m venv` needs
# python3-venv. A half-made venv must not pass for a working one next time.
$(PY):
	@CHECK_VENV_PYTHON=$(PYTHON) scripts/install-system-deps
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

# The stamps make a second `make` skip pip until a requirements file changes. `make run` installs
# requirements.txt alone; the test and lint targets add requirements-test.txt (which includes it).
$(STAMP): requirements.txt | $(PY)
	@echo "Installing requirements.txt into $(VENV)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(TEST_STAMP): requirements-test.txt requirements.txt | $(PY)
	@echo "Installing requirements-test.txt into $(VENV)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	@touch $@

deps: $(STAMP) ## Create .venv, install requirements.txt, install system tools (as root)
	@scripts/install-system-deps

test-deps: deps $(TEST_STAMP) ## deps, plus requirements-test.txt and what the tests drive (chromium, ruby, svn, Pulp)
	@scripts/install-system-deps --test
	@scripts/install-pulp

# lint-imports: the app layers, Django-free builders/ and no import cycle (.importlinter;
# ARCHITECTURE.md, "Imports run one way").
lint: $(TEST_STAMP) ## Check code style (ruff check, ruff format --check) and the import contracts
	$(RUFF) check .
	$(RUFF) format --check .
	$(VENV)/bin/lint-imports

fmt: $(TEST_STAMP) ## Fix what ruff can fix, then format the code (make lint shows what is left)
	$(RUFF) check --fix-only .
	$(RUFF) format .

migrate: $(STAMP) ## Apply database migrations
	$(PY) manage.py migrate --noinput

builder-tools: ## Install pyp2spec, pyp2rpm and tito for PyPI and tito sources (BUILDER_TOOLS_DIR)
	@scripts/builder-tools

# scripts/serve is also what tests/e2e/test_first_hour.py starts: the test serves what this serves.
run: deps builder-tools ## Migrate, create the admin account if none exists, collectstatic, serve on HOST:PORT
	PY=$(PY) scripts/serve $(HOST) $(PORT)

worker: deps builder-tools ## Run Dramatiq workers (production setup: needs BROKER_URL)
	$(PY) manage.py rundramatiq

# pytest's exit code 5 (no tests collected) fails this target like any other failure.
# worksteal: a process that runs out of tests takes some of the other's, so a few long tests
# (VM boots, end-to-end builds) do not leave one CPU idle at the end.
test: test-deps lint builder-tools ## Lint, check that migrations are complete, run pytest (PYTEST_WORKERS processes, PYTEST_ARGS)
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: deps ## Run the pipeline benchmark (bench/pipeline.py)
	$(PY) bench/pipeline.py

bench-pulp: deps ## Run the repository store benchmark (bench/pulp_publish.py; Pulp and PostgreSQL)
	@scripts/install-pulp
	$(PY) bench/pulp_publish.py

fresh-check: ## As root: make run and make test in a fresh minimal Debian (scripts/fresh-machine-check)
	scripts/fresh-machine-check $(FRESH_CHECK_ARGS)

clean: ## Remove caches (.pytest_cache, .ruff_cache, __pycache__); var/ holds data and stays
	rm -rf .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
