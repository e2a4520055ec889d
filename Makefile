# Everything a fresh machine needs lives here: `make run` and `make test` build .venv/ first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench lint clean

# The installer's own notices (the editable install's, pip's) go to .venv/install.log and
# are shown only when the install fails: the first screen of `make run` is its summary.
$(STAMP): pyproject.toml
	@echo "Installing newswatch and its dependencies into $(VENV)/ (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]'; } \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/newswatch run

# Two test processes: the end-to-end tests spend much of their time waiting (brokers, servers,
# timers), and each starts worker processes of its own, so more than two only crowd the cores.
# One test file stays in one process (its module fixtures are shared).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Pure units and stage tests (no end-to-end runs, no broker, no child processes).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# make bench BENCH_ARGS='--sizes 1000,20000 --inputs rss --workers default --repeats 2'
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pipelines connectors schemas tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) newswatch-data
