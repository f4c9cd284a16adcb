# Two entry points, each doing all setup on a fresh machine:
#   make demo   -> the main job (`shipcam demo` on the embedded synthetic data)
#   make test   -> the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test js-test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shipcam demo

test: $(STAMP)
	LINT_IMPORTS=$(BIN)/lint-imports .ci/lint-imports
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory js-test

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
