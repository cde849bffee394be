# Two commands a new user needs: `make serve` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed
NODE_STAMP := tests/js/node_modules/.installed
APT_STAMP := $(VENV)/.apt-installed

.PHONY: serve test lint bench install install-test clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

install: $(STAMP)

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Debian packages the tests drive: Chromium for the console tests, sqlite3 for benchmark baselines.
$(APT_STAMP):
	@if ! command -v chromium >/dev/null || ! command -v sqlite3 >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium sqlite3 >/dev/null; \
	fi
	mkdir -p $(VENV) && touch $@

# The AWS JS SDK v3, a second independent SES client for the acceptance tests.
$(NODE_STAMP): tests/js/package.json
	cd tests/js && npm install --no-audit --no-fund --silent
	touch $@

install-test: $(TEST_STAMP) $(APT_STAMP) $(NODE_STAMP)

serve: $(STAMP)
	$(BIN)/sescontacts serve

test: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q
	# The console once more, on the ses backend (its SES is a second local server).
	SESCONTACTS_BROWSER_BACKEND=ses $(BIN)/python -m pytest -q tests/browser

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install-test
	$(BIN)/python -m bench

docs: $(STAMP)
	$(BIN)/python -m sescontacts.docgen > docs/cli.md
	$(BIN)/python -m sescontacts.docgen readme

clean:
	rm -rf $(VENV) tests/js/node_modules
