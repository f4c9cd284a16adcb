# Two entry points, each doing all setup on a fresh machine:
#   make demo   -> the main job (`shipcam demo` on the embedded synthetic data)
#   make test   -> the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test install clean

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

clean:
	rm -rf $(VENV) runs .pytest_cache
