# knserve: `make up` runs a local cluster with knserve in it; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

ASSETS := dashboard/static/vendor/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: up down test status install binaries assets browser clean node-setup node-binaries test-nodes

# RUNTIME=containerd: real kubelet + containerd nodes in place of the process node.
RUNTIME ?= process

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# compat: the checkout on sys.path through a plain .pth; the default editable import hook
	@# costs ~20 ms of CPU at every Python start, and every local pod starts two.
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

binaries: $(STAMP)
	$(BIN)/python -m localcluster.binaries --runtime $(RUNTIME)

# The Debian packages a containerd node needs (apt-get, as root).
node-setup: $(STAMP)
	$(BIN)/python -m localcluster.nodesetup

# The dashboard's browser libraries: npm ci from dashboard/package-lock.json, copied into
# dashboard/static/vendor (not committed).
$(ASSETS): dashboard/package.json dashboard/package-lock.json | $(STAMP)
	$(BIN)/python -m dashboard.assets
	@touch $@

assets: $(ASSETS)

# Debian's Chromium, which the dashboard's browser tests drive (Playwright downloads no browser).
browser:
	@test -x $(CHROMIUM) || { echo "==> installing Debian's chromium for the dashboard's browser tests"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }
	@test -x $(CHROMIUM) || { echo "error: $(CHROMIUM) is missing and 'apt-get install -y chromium' failed (it needs root and Debian's package lists); install Chromium so that the dashboard's browser tests can run" >&2; exit 1; }

up: binaries assets
	$(BIN)/knserve local up --runtime $(RUNTIME)

down: $(STAMP)
	$(BIN)/knserve local down

status: $(STAMP)
	$(BIN)/knserve local status

# The whole suite, then the real-node tests (tests/nodes, which need root, the node packages and
# the node binaries): both always run, and make fails if either did.
test: binaries assets browser node-binaries
	@status=0; \
	$(BIN)/python -m pytest -q || { status=1; echo "==> the test suite failed (the real-node tests run anyway)" >&2; }; \
	echo "==> real-node tests: kubelet + containerd nodes (tests/nodes)"; \
	KNSERVE_NODE_TESTS=1 $(BIN)/python -m pytest tests/nodes -q -rA || { status=1; \
	  echo "==> the real-node tests failed (tests/nodes; each node's daemon logs are in its state directory under pytest's temporary directory)" >&2; }; \
	exit $$status

# The real nodes' Debian packages and binaries (kubelet, kube-proxy, kube-scheduler, CoreDNS).
node-binaries: node-setup
	$(BIN)/python -m localcluster.binaries --runtime containerd

# Only the real-node tests (kubelet + containerd).
test-nodes: node-binaries
	KNSERVE_NODE_TESTS=1 $(BIN)/python -m pytest tests/nodes -q -rA

clean: down
	rm -rf $(VENV)
