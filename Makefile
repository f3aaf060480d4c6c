# embed-kit: provision with Terraform, then embed with `python -m embed`.
# `make help` lists the targets. Override any variable on the command line,
# e.g. `make TERRAFORM=tofu plan` or `make plan OFFLINE=1`.

TERRAFORM ?= terraform
PYTHON ?= python3
VENV ?= .venv
TF_DIR ?= terraform
BUILD ?= build
# Var file for plan/apply/destroy; terraform.tfvars is also read by terraform itself.
TFVARS ?= $(if $(OFFLINE),$(TF_DIR)/terraform.tfvars.example,$(wildcard $(TF_DIR)/terraform.tfvars))
# OFFLINE=1 plans with the offline stand-in provider (no credentials, no network) in a scratch copy.
OFFLINE ?=
# FAIL_ON_DATA_LOSS=1 makes `make plan` fail when a dataset, table or bucket would be destroyed or replaced.
FAIL_ON_DATA_LOSS ?=
PYTEST_ARGS ?=
# Where `make demo` lays out its sample images and keeps its embedded database.
DEMO ?= $(BUILD)/demo

PY := $(VENV)/bin/python
# Each target installs what it runs and no more: the package alone (plan), the test harness (lint),
# the embedded engine and its sample photos (demo). `.installed` has every extra (test, venv) and
# stands in for the others.
STAMP := $(VENV)/.installed
STAMP_BASE := $(VENV)/.installed-base
STAMP_LINT := $(VENV)/.installed-lint
STAMP_DEMO := $(VENV)/.installed-demo
EXTRAS_all := [test,local,check,demo]
EXTRAS_base :=
EXTRAS_lint := [test]
EXTRAS_demo := [local,demo]
# --no-compile: pip's byte-compiling of every installed file (torch's thousands) costs ~40 s of a fresh
# `make demo`; Python compiles the modules a command imports, once, when it first imports them.
PIP_INSTALL = $(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e '.$(EXTRAS_$(1))'
VAR_FILE := $(if $(TFVARS),-var-file=$(abspath $(TFVARS)))
WORKDIR := $(if $(OFFLINE),$(BUILD)/offline/$(notdir $(TF_DIR)),$(TF_DIR))
TF := $(TERRAFORM) -chdir=$(WORKDIR)
# Offline, TF_IN_AUTOMATION also drops terraform's "run terraform apply" hint: the stand-in cannot apply.
TF_ENV := $(if $(OFFLINE),eval "$$($(PY) -m tests.standin --print-env)" && TF_IN_AUTOMATION=1,)
# Offline plans go to build/offline/ so `make apply` never picks up a stand-in plan.
PLAN_DIR := $(abspath $(if $(OFFLINE),$(BUILD)/offline,$(BUILD)))

# The stand-in only plans: refuse apply and destroy before anything runs (init would wipe build/offline).
ifneq ($(and $(OFFLINE),$(filter apply destroy,$(MAKECMDGOALS))),)
$(error The offline stand-in providers only plan: run `make $(filter apply destroy,$(MAKECMDGOALS))` without OFFLINE=1 (nothing was changed))
endif

# plan, apply and destroy need the stack's variables: a var file, or TF_VAR_* in the environment.
vars:
	@test -n "$(TFVARS)" -o -n "$$TF_VAR_project_id" || { \
	echo "No variables for terraform: cp $(TF_DIR)/terraform.tfvars.example $(TF_DIR)/terraform.tfvars and edit it," >&2; \
	echo "or pass TFVARS=FILE; \`make plan OFFLINE=1\` plans the example offline." >&2; exit 2; }

.DEFAULT_GOAL := help
.PHONY: help venv vars init plan apply destroy fmt docs lint test demo clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-9s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  Variables: TERRAFORM=$(TERRAFORM) TFVARS=$(TFVARS) OFFLINE=$(OFFLINE) FAIL_ON_DATA_LOSS=$(FAIL_ON_DATA_LOSS)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call PIP_INSTALL,all)
	touch $@

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if [ $(STAMP) -nt pyproject.toml ]; then :; else $(call PIP_INSTALL,$*); fi
	touch $@

venv: $(STAMP) ## Create or update the virtual environment in .venv

init: $(if $(OFFLINE),$(STAMP_BASE)) ## terraform init in terraform/ (OFFLINE=1: stand-in provider, scratch copy)
ifneq ($(OFFLINE),)
	rm -rf $(BUILD)/offline && mkdir -p $(BUILD)/offline
	cp -R modules $(TF_DIR) $(BUILD)/offline/
	rm -rf $(BUILD)/offline/*/.terraform $(BUILD)/offline/*/.terraform.lock.hcl
	# Plan the var file alone, against no state and no remote backend (a backend "gcs" needs credentials).
	cd $(WORKDIR) && rm -f terraform.tfvars terraform.tfvars.json *.auto.tfvars *.auto.tfvars.json *.tfstate *.tfstate.backup
	printf 'terraform {\n  backend "local" {}\n}\n' > $(WORKDIR)/offline_override.tf
	$(TF_ENV) $(TF) init -input=false
else
	@$(TF) init -input=false || { echo; \
	echo "terraform init failed. If it could not reach the Terraform registry (no network, a proxy), plan with" >&2; \
	echo "the offline stand-in providers instead: make plan OFFLINE=1 (add TFVARS=$(or $(TFVARS),FILE) for your values)." >&2; exit 1; }
endif

plan: vars init $(STAMP_BASE) ## Plan to build/plan.tfplan, plan.json, plan.txt and the review plan.md (OFFLINE=1: build/offline/)
	mkdir -p $(PLAN_DIR)
	$(TF_ENV) $(TF) plan -input=false $(VAR_FILE) -out=$(PLAN_DIR)/plan.tfplan
	$(TF_ENV) $(TF) show -json $(PLAN_DIR)/plan.tfplan > $(PLAN_DIR)/plan.json
	$(TF_ENV) $(TF) show -no-color $(PLAN_DIR)/plan.tfplan > $(PLAN_DIR)/plan.txt
	$(PY) -m embed plan-review $(PLAN_DIR)/plan.json --output $(PLAN_DIR)/plan.md $(if $(FAIL_ON_DATA_LOSS),--fail-on-data-loss) $(if $(OFFLINE),--offline)
	@echo "Review written to $(PLAN_DIR)/plan.md"

apply: vars init ## Apply the stack (uses build/plan.tfplan when `make plan` wrote one)
	if [ -f $(BUILD)/plan.tfplan ]; then $(TF) apply -input=false $(abspath $(BUILD))/plan.tfplan && rm -f $(BUILD)/plan.tfplan; \
	else $(TF) apply -input=false $(VAR_FILE); fi

destroy: vars init ## Destroy the stack (the dataset refuses while it holds tables, unless allowed)
	$(TF) destroy -input=false $(VAR_FILE)

docs: ## Regenerate the variables and outputs tables of the READMEs from the .tf files
	$(PYTHON) -m tests.support.docs --write

fmt: $(STAMP_LINT) ## Format the Terraform and Python code (and fix what ruff can)
	$(TERRAFORM) fmt -recursive modules $(TF_DIR)
	$(PY) -m ruff format python tests bench
	$(PY) -m ruff check --fix python tests bench

lint: $(STAMP_LINT) ## ruff (format and lint), terraform fmt -check, terraform validate and checkov
	$(PY) -m ruff format --check python tests bench
	$(PY) -m ruff check python tests bench
	$(PY) -m pytest -q tests/terraform/test_lint.py $(PYTEST_ARGS)

test: $(STAMP) ## Run the whole test suite (offline), a worker per core
	$(PY) -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

demo: $(STAMP_DEMO) ## Embed sample photos offline (embedded engine), validate, show similar images
	$(PY) -m embed.demo $(DEMO)/images
	$(PY) -m embed run --engine local --images $(DEMO)/images --db $(DEMO)/embed.duckdb
	$(PY) -m embed similar $(DEMO)/images/motorcycle_left.png --engine local --db $(DEMO)/embed.duckdb --top-k 3

clean: ## Remove build output and caches (keeps .venv)
	rm -rf $(BUILD) .cache .pytest_cache
