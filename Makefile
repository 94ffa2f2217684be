# The two commands: `make run` and `make test`. Everything else is for developers.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-postgres lint bench screenshots clean

INSTALL_LOG := instance/install.log
DEMO_LOG    := instance/demo.log

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The installer's pages of output go to a log file: `make run` ends with the admin's one-time password,
# where nobody can miss it. A failure prints the end of the log.
$(STAMP): pyproject.toml | $(BIN)/python
	@mkdir -p instance
	@echo "Installing Mailroom into $(VENV) (details in $(INSTALL_LOG))..."
	@{ $(BIN)/pip install -q --disable-pip-version-check --upgrade pip && \
	   $(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'; } >$(INSTALL_LOG) 2>&1 \
	  || { tail -n 30 $(INSTALL_LOG); echo "Installing failed; the whole log is $(INSTALL_LOG)"; exit 1; }
	@touch $(STAMP)

# init's output (the framed one-time password on a new database) is held in a shell variable, never a
# file, and printed after the demo office has loaded, just before the server starts.
run: $(STAMP)
	@mkdir -p instance; \
	init_output="$$($(BIN)/mailroom init)" || exit 1; \
	echo "Loading the demo office if the database is empty (details in $(DEMO_LOG))..."; \
	$(BIN)/mailroom demo --if-empty >$(DEMO_LOG) 2>&1 \
	  || { tail -n 30 $(DEMO_LOG); echo "The demo office could not be loaded; the whole log is $(DEMO_LOG)"; exit 1; }; \
	echo "$$init_output"; \
	exec $(BIN)/mailroom run

test: $(STAMP)
	$(BIN)/pytest

test-postgres: $(STAMP)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/15} $(BIN)/pytest

# ruff, mypy (configured in pyproject.toml) and the import-linter contracts (the layers of docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/pages.py

clean:
	rm -rf $(VENV) instance .pytest_cache
