# Two entry points, each doing all setup on a fresh machine:
#   make demo   -> the main job (`shipcam demo` on the embedded synthetic data)
#   make test   -> the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test js-test browser install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shipcam demo

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	LINT_IMPORTS=$(BIN)/lint-imports .ci/lint-imports
	$(MAKE) --no-print-directory js-test
	$(BIN)/python -m pytest -q -n auto --dist worksteal

# Headless Chromium for the web page's test (tests/test_web_page.py): installed
# with apt-get when missing and possible; otherwise that test skips, loudly.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; } && \
	  echo "installed chromium (apt-get) for the web page test"; } || \
	echo "!!! Chromium missing and not installable here: the web page test will be SKIPPED !!!"

# The JavaScript runtime against the same conformance vectors. --ignore-scripts:
# onnxruntime-node's install script downloads from a host that may be unreachable;
# the CPU binaries it needs are already in the package.
js-test:
	@if command -v npm >/dev/null 2>&1; then \
		cd js && npm ci --ignore-scripts --no-audit --no-fund && npm test; \
	else \
		echo "!!! SKIPPED: the JavaScript tests: node/npm not found (apt-get install nodejs npm) !!!"; \
	fi

clean:
	rm -rf $(VENV) runs .pytest_cache js/node_modules
