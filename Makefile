# Everything installs itself from nothing: `make demo` runs the main job, `make test` runs every check.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# One Python for the dev environment and the Lambda runtime (python3.13): the first python3.13 that
# really runs, from PATH or from pyenv (whose shim fails when 3.13 is not the selected version).
PY313 := $(shell for p in "$$(command -v python3.13 2>/dev/null)" $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13.*/bin/python3.13 2>/dev/null | sort -rV); do \
  [ -n "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; done)
UV_VERSION := 0.13.8
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
UV := $(CURDIR)/$(VENV)/bin/uv
SAM := $(CURDIR)/.venv-sam/bin/sam
CHECKOV := $(CURDIR)/.venv-checkov/bin/checkov

export UV_PYTHON_DOWNLOADS := never
, := ,
export SAM_CLI_TELEMETRY := 0
# Compile bytecode at install time: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
# process would otherwise recompile pandas/boto3/moto on import (pandas: 3.0 s instead of 0.7 s).
export UV_COMPILE_BYTECODE := 1
# sam build's python3.13 workflow looks the runtime up on PATH.
export PATH := $(dir $(PY313)):$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# --- environments -----------------------------------------------------------------------------

# make_venv DIR,LOCK,WHAT: a fresh venv with exactly the pins of LOCK. It says what it installs before
# it starts and its size when done. On a terminal uv draws its live progress (downloads, builds, the
# install); in a log (CI) its per-package lines are left out and its phase summaries kept.
define make_venv
	@[ -n "$(PY313)" ] || { echo "python3.13 not found (install it with: pyenv install 3.13)"; exit 1; }
	@echo "--> $(1): $(3): $$(grep -c '==' $(2)) pinned packages from $(2) (only when that file changes)"
	rm -rf $(1)
	$(PY313) -m venv $(1)
	$(1)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@echo "$(1)/bin/uv pip sync --python $(1)/bin/python $(2)"
	@echo "--> $(1): installing and compiling bytecode (about a minute the first time, quiet while compiling; later imports are fast)..."
	@if [ -t 2 ]; then $(1)/bin/uv pip sync --python $(1)/bin/python $(2); \
	else $(1)/bin/uv pip sync --python $(1)/bin/python $(2) 2>&1 | { grep -v '^ [-+~] ' || true; }; fi
	@echo "--> $(1): ready, $$(du -sh $(1) | cut -f1) on disk"
endef

# The locked dependencies (the slow part) are re-synced only when the lock changes; the project's own
# editable install is refreshed when pyproject.toml changes.
$(VENV)/.deps: requirements/dev.txt
	$(call make_venv,$(VENV),requirements/dev.txt,the dev environment (SageMaker SDK for build time only$(,) moto$(,) boto3$(,) Powertools$(,) pandas$(,) pyarrow$(,) pytest$(,) ruff$(,) mypy))
	touch $@

$(VENV)/.stamp: $(VENV)/.deps pyproject.toml
	@echo "--> $(VENV): this project$(,) editable"
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

.venv-sam/.stamp: requirements/sam.txt
	$(call make_venv,.venv-sam,requirements/sam.txt,the SAM CLI (sam validate and sam build))
	touch $@

.venv-checkov/.stamp: requirements/checkov.txt
	$(call make_venv,.venv-checkov,requirements/checkov.txt,checkov (template security checks))
	touch $@

.PHONY: venv
venv: $(VENV)/.stamp .venv-sam/.stamp .venv-checkov/.stamp ## Create the three pinned environments

.PHONY: lock
lock: $(VENV)/.stamp ## Re-resolve requirements/*.in into the pinned requirements/*.txt
	for f in dev sam checkov; do $(UV) pip compile --quiet --no-header --python $(PY313) requirements/$$f.in -o requirements/$$f.txt; done

# --- checks -----------------------------------------------------------------------------------

.PHONY: lint
lint: $(VENV)/.stamp ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: check-template
check-template: $(VENV)/.stamp .venv-sam/.stamp .venv-checkov/.stamp ## sam validate --lint, cfn-lint (+serverless rules), checkov
	$(SAM) validate --lint
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules
	$(CHECKOV) -f template.yaml --framework cloudformation --skip-download --compact --quiet

.PHONY: test-unit
test-unit: $(VENV)/.stamp ## The unit tier, in seconds: tests/unit (no emulator, no subprocess, no network)
	$(VENV)/bin/pytest tests/unit

.PHONY: test
test: venv lint test-unit check-template build ## Everything CI runs: lint, types, the unit tier, template checks, sam build, then every other test
	$(VENV)/bin/pytest --ignore=tests/unit

# --- build and deploy -------------------------------------------------------------------------

.PHONY: build
build: $(VENV)/.stamp .venv-sam/.stamp ## sam build: both functions into .aws-sam/build (renders the pipeline)
	$(SAM) build

.PHONY: deploy
deploy: build ## sam deploy --guided (needs AWS credentials)
	$(SAM) deploy --guided

# --- local runtime ----------------------------------------------------------------------------

# The local account's quotas (python -m local up --help): make up MAX_EXECUTIONS=5 MAX_INSTANCES=2
LOCAL_QUOTAS = $(if $(MAX_EXECUTIONS),--max-concurrent-executions $(MAX_EXECUTIONS)) $(if $(MAX_INSTANCES),--max-processing-instances $(MAX_INSTANCES))

.PHONY: demo
demo: $(VENV)/.stamp ## The main job, locally: upload -> trigger -> pipeline -> clean data, a burst; checked
	$(PY) -m local demo $(LOCAL_QUOTAS)

.PHONY: up
up: $(VENV)/.stamp ## The local runtime on port 4599 (PORT=N to change; quotas: 20 executions, 4 instances); Ctrl-C stops
	$(PY) -m local up $(LOCAL_QUOTAS) $(if $(PORT),--port $(PORT))

.PHONY: invoke
invoke: $(VENV)/.stamp ## Docker-free `sam local invoke`: make invoke EVENT=events/s3-put.json [FUNCTION=TriggerFunction] [RUNNING=1: into `make up`]
	@[ -n "$(EVENT)" ] || { echo "usage: make invoke EVENT=events/<file>.json [FUNCTION=<logical id>] [RUNNING=1]"; exit 2; }
	$(PY) -m local invoke $(EVENT) $(if $(FUNCTION),--function $(FUNCTION)) $(if $(RUNNING),--running)

.PHONY: status
status: $(VENV)/.stamp ## s3sm status: recent runs, uploads waiting, dead letters (the running `make up`, or STACK=name)
	$(VENV)/bin/s3sm status $(if $(STACK),--stack $(STACK))

.PHONY: figures
figures: $(VENV)/.stamp ## Render docs/benchmarks.md from bench/results/*.json (never edit it by hand)
	$(PY) bench/figures.py

.PHONY: bench
bench: $(VENV)/.stamp ## Benchmarks: ETL speed/memory, trigger cold start, local latency and bursts
	$(PY) bench/trigger_coldstart.py
	$(PY) bench/etl_bench.py
	$(PY) bench/local_latency.py
	$(PY) bench/load_burst.py  # 1,000 uploads + 100 overwritten keys against the default quotas: about 10 min

.PHONY: clean
clean: ## Remove environments and build output
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam build .pytest_cache .mypy_cache .ruff_cache
