# knserve: `make up` runs a local cluster with knserve in it; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down test status install binaries clean

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# compat: the checkout on sys.path through a plain .pth; the default editable import hook
	@# costs ~20 ms of CPU at every Python start, and every local pod starts two.
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

binaries: $(STAMP)
	$(BIN)/python -m localcluster.binaries

up: binaries
	$(BIN)/knserve local up

down: $(STAMP)
	$(BIN)/knserve local down

status: $(STAMP)
	$(BIN)/knserve local status

test: binaries
	$(BIN)/python -m pytest -q

clean: down
	rm -rf $(VENV)
