# `make run` and `make test` are each ONE command on a fresh machine: they create or
# update .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "zapgate needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# `make run ENGINE=sim` tries everything without a phone (simulated WhatsApp network).
run: $(STAMP)
	$(BIN)/zapgate serve $(if $(ENGINE),--engine $(ENGINE))

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests (tests/e2e) drive Debian's Chromium; Playwright never downloads one.
test: lint typecheck
	command -v chromium >/dev/null && test -d /usr/share/fonts/truetype/noto || (apt-get update && apt-get install -y --no-install-recommends chromium fonts-noto-color-emoji)
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pytest -q -p no:cacheprovider --durations=15

# Every benchmark (bench/run.py): bench/results/latest.json, a table, a chart. QUICK=1 runs
# small counts in under a minute (CI) and fails only when something crashes.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(filter-out 0,$(QUICK)),--quick)

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
