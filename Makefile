# The single entry point. Every target creates the venv it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# npm dev tools (package.json): npm ci rewrites this file, so it is the install's stamp.
NODE_STAMP := node_modules/.package-lock.json
BUF := node_modules/.bin/buf
NODE_AGENT := examples/node-agent
NODE_AGENT_STAMP := $(NODE_AGENT)/node_modules/.package-lock.json

.PHONY: venv browser node-tools proto proto-check buf lint typecheck test unit integration demo serve bench image clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

node-tools: $(NODE_STAMP) $(NODE_AGENT_STAMP)  ## npm: buf (package.json), the Node agent's deps

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

$(NODE_AGENT_STAMP): $(NODE_AGENT)/package.json $(NODE_AGENT)/package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --prefix $(NODE_AGENT)
	@touch $@

browser:  ## Debian's chromium, for the dashboard's browser tests (root or sudo)
	@command -v chromium >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@chromium --version

proto: venv  ## regenerate agentmesh/v1 from protos/
	$(BIN)/python scripts/gen_proto.py

proto-check: venv  ## fail when the generated code is stale
	@rm -rf build/proto-check && mkdir -p build/proto-check
	@$(BIN)/python scripts/gen_proto.py build/proto-check
	@diff -r -x __pycache__ agentmesh/v1 build/proto-check/agentmesh/v1 \
		|| (echo "generated code is stale: run 'make proto' and commit" && exit 1)
	@echo "generated code is up to date"

buf: node-tools  ## lint, format and breaking-change checks of protos/ (buf.yaml)
	$(BUF) lint
	$(BUF) format --exit-code -d
	BUF=$(BUF) bash scripts/buf_breaking.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy coordinator agent_sdk agentmesh/agents agentmesh/cli agentmesh/wire.py agentmesh/payload.py agentmesh/documents.py agentmesh/protocol.py agentmesh/signing.py tests bench

test: venv browser proto-check buf lint  ## the whole suite, as CI runs it
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: venv
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

demo: venv  ## the main job: coordinator + agents + tasks, end to end
	$(BIN)/agentmesh demo

serve: venv
	$(BIN)/agentmesh serve

bench: venv
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/workflows.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/fairness.py
	$(BIN)/python bench/services.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/web.py

image:
	docker build -f deploy/Dockerfile -t agentmesh:dev .

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
