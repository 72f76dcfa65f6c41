# creatormesh — every command a developer or CI needs. `make help` lists them.
# The two a new user needs: `make demo` and `make test`. Both create .venv and
# install what they need on first use (Python 3.11 is the only prerequisite).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip
SERVICES := $(patsubst %/,%,$(sort $(dir $(wildcard services/*/pyproject.toml))))
PROTO_FILES = $(shell find protos/creatormesh -name '*.proto' | sort)
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# --- environment -------------------------------------------------------------
$(STAMP): constraints.txt requirements-dev.txt $(wildcard services/*/pyproject.toml) protos/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	@# torch first and pinned: an unpinned torch pulled in by a service would be a multi-GB CUDA build
	if grep -qs '"torch' services/*/pyproject.toml; then $(PIP) install -q torch==2.13.0; fi
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt \
	  -e protos $(foreach d,$(SERVICES),-e "$(d)[all]") \
	  --config-settings editable_mode=compat
	touch $@

.PHONY: venv
venv: $(STAMP) ## create .venv with every service and the dev tools

node_modules/.bin/buf: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: lock
lock: ## re-pin constraints.txt from what is installed in .venv
	{ echo "# Pinned versions for every distribution in this repo (make lock re-pins from .venv)."; \
	  $(PIP) freeze --exclude-editable | grep -v '^-e' | sed -E 's/^(torch[a-z]*==[^+]*)\+.*/\1/'; } > constraints.txt

# --- the two commands ---------------------------------------------------------
.PHONY: demo
demo: $(STAMP) ## start the whole mesh, drive the end-to-end flow, write build/demo/report.html
	$(BIN)/creatormesh demo

.PHONY: test
test: $(STAMP) lint protos-check vllm-venv deploy-tools cpp-toolchain ## everything CI runs: lint, contract checks, the test suite
	CREATORMESH_DEPLOY_VENV=$(DEPLOY_VENV) $(PY) -m pytest || { rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; else exit $$rc; fi; }

# --- pieces ------------------------------------------------------------------
.PHONY: deploy-tools
DEPLOY_TOOLS := checkov==3.3.30 ansible-core==2.19.14 ansible-lint==26.10.1 yamllint==1.38.0
DEPLOY_VENV ?= $(HOME)/.cache/creatormesh/deploy-tools-1
deploy-tools: ## checkov, ansible-lint, yamllint in their own venv (user cache), promtool from Debian's package (.tools/)
	@if [ "$$(cat $(DEPLOY_VENV)/.installed 2>/dev/null)" != "$(DEPLOY_TOOLS)" ]; then \
	  echo "deploy-tools: $(DEPLOY_TOOLS) -> $(DEPLOY_VENV)"; \
	  $(PYTHON) -m venv $(DEPLOY_VENV) && $(DEPLOY_VENV)/bin/python -m pip install -q --upgrade pip && \
	  $(DEPLOY_VENV)/bin/python -m pip install -q $(DEPLOY_TOOLS) && echo "$(DEPLOY_TOOLS)" > $(DEPLOY_VENV)/.installed; fi
	@if [ -x .tools/promtool ] || command -v promtool >/dev/null; then :; \
	elif command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then \
	  rm -rf .tools/deb && mkdir -p .tools/deb && cd .tools/deb && apt-get download prometheus >/dev/null 2>&1 && \
	  dpkg-deb -x prometheus_*.deb root && cp root/usr/bin/promtool ../promtool && cd .. && rm -rf deb && \
	  ./promtool --version | head -1; \
	else echo "no apt-get here: promtool tests skip (install Prometheus' promtool to run them)"; fi

.PHONY: cpp-toolchain
CPP_TOOLCHAIN := g++ cmake pkg-config protobuf-compiler protobuf-compiler-grpc libgrpc++-dev libprotobuf-dev \
  libeigen3-dev nlohmann-json3-dev libfaiss-dev libhiredis-dev libssl-dev
cpp-toolchain: ## C++ compiler, CMake, gRPC, Eigen, nlohmann-json, FAISS, hiredis from Debian's packages (root): ranking's compiled path
	@if command -v cmake >/dev/null && command -v grpc_cpp_plugin >/dev/null && pkg-config --exists grpc++ eigen3 \
	  nlohmann_json hiredis libcrypto 2>/dev/null && [ -f /usr/include/faiss/IndexHNSW.h ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "cpp-toolchain: apt-get install $(CPP_TOOLCHAIN)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(CPP_TOOLCHAIN) >/dev/null || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(CPP_TOOLCHAIN) >/dev/null; }; \
	else echo "cpp-toolchain: not root: the C++ tests skip (as root: apt-get install $(CPP_TOOLCHAIN))"; fi

.PHONY: vllm-venv
vllm-venv: $(STAMP) ## vLLM's CPU build in its own venv in the user cache (the Rerank tests' LM server; ~3.5 GB, once)
	$(PY) -m creatormesh.viral_scoring.vllm_runtime

.PHONY: lint
lint: $(STAMP) ## ruff, mypy on the kit and services, buf lint on the protos (if npm is here)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH="protos:benchmarks:$$(echo $(SERVICES) | tr ' ' ':')" $(BIN)/mypy $(addsuffix /creatormesh,$(SERVICES)) benchmarks
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory lint-protos; \
	  else echo "npm not found: buf lint skipped (tests still check package/version naming)"; fi

.PHONY: lint-protos
lint-protos: node_modules/.bin/buf ## buf lint (STANDARD + COMMENTS) on the contract tree
	node_modules/.bin/buf lint

.PHONY: protos
protos: $(STAMP) ## regenerate the committed Python code (+ .pyi stubs) from protos/
	find protos/creatormesh \( -name '*_pb2*.py' -o -name '*_pb2*.pyi' \) -delete
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m grpc_tools.protoc -I protos \
	  --python_out=protos --grpc_python_out=protos \
	  --mypy_out=quiet:protos --mypy_grpc_out=quiet:protos $(PROTO_FILES)

.PHONY: protos-check
protos-check: protos ## fail if the committed generated code differs from a fresh generation
	@git diff --exit-code --stat -- protos || \
	  (echo "generated code is stale: run 'make protos' and commit the result" >&2; exit 1)
	@test -z "$$(git status --porcelain -- protos)" || \
	  (git status --porcelain -- protos; echo "untracked generated files: run 'make protos' and commit" >&2; exit 1)

.PHONY: docs
docs: $(STAMP) ## regenerate the configuration table in README.md
	$(PY) -m creatormesh.common.docs README.md

.PHONY: bench
bench: $(STAMP) ## run the benchmarks (results go to docs/performance.md by hand)
	$(PY) benchmarks/grpc_overhead.py
	$(PY) benchmarks/bus_throughput.py
	$(PY) benchmarks/allocation_pool.py
	$(PY) benchmarks/allocation_rpc.py
	$(PY) benchmarks/ranking_index.py
	$(PY) benchmarks/ranking_rpc.py
	$(PY) benchmarks/viral_scoring.py

.PHONY: promote
promote: ## promote a release: make promote FROM=canary TO=production [VERSION=x.y.z] (commits the release file)
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make promote FROM=<env> TO=<env> [VERSION=x.y.z]"; exit 2; }
	$(PY) argocd/promote.py $(FROM) $(TO) $(if $(VERSION),--version $(VERSION))

.PHONY: up
up: $(STAMP) ## start the mesh and stream its logs (Ctrl-C stops)
	$(BIN)/creatormesh up

.PHONY: clean
clean: ## remove the virtualenv and build outputs
	rm -rf $(VENV) build node_modules .creatormesh .tools
