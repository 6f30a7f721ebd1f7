# The README's two commands: `make lab` and `make test`. Everything lives in .venv; nothing is installed globally.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Jupyter refuses to start as root unless told; containers and some classroom machines run as root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Extra JupyterLab options, e.g. `make lab LAB_ARGS="--no-browser --ServerApp.port=8890"` (the browser test uses it).
LAB_ARGS ?=

.PHONY: lab test install seed build site clean

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[postgres,dev]'
	@touch $(STAMP)

install: $(STAMP)

seed: install
	$(BIN)/course seed

lab: seed
	$(BIN)/jupyter lab $(LAB_FLAGS) $(LAB_ARGS) --ServerApp.root_dir="$(CURDIR)" notebooks/00_start_here.ipynb

# Lint, types, then the suite on two workers per core (pytest-xdist); `make test PYTEST_WORKERS=0` runs it in one
# process.
# --dist loadgroup hands out tests one at a time to whichever worker is free; the kernel runs come first
# (tests/conftest.py), so the long ones start early and short ones fill the gaps. (--dist load would give the first
# ~77 tests, all the kernel runs, to one worker.) Each worker has its own data folder; the PostgreSQL server and seeds are shared.
# Two workers per core: the tests spend about half their time waiting on kernels, servers and sockets, so a second
# worker per core fills that time (2 cores, the whole suite: 9:40 with -n 2, 7:37 with -n 4).
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

build: install
	$(BIN)/course build

# The course as static HTML in build/site: every lesson executed on SQLite, exercises without solutions, links
# checked. Nothing is downloaded at build time. Add HUB=https://hub.example.edu for nbgitpuller links on every page.
SITE_STAMP := $(VENV)/.site-installed
$(SITE_STAMP): $(STAMP)
	@$(BIN)/python -c 'import nbconvert' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[site]'
	@touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(BIN)/course site --out build/site $(if $(HUB),--hub $(HUB),)

clean:
	rm -rf $(VENV) data/*.sqlite3 .pytest_cache .ruff_cache
