# The commands a person runs locally are the ones CI runs.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup toolchain lint test test-unit up down render

setup:
	@scripts/bootstrap.sh

# The same gates run as pre-commit hooks (.pre-commit-config.yaml); keep the two lists in step.
SHELL_SCRIPTS = $(shell find . -name '*.sh' -not -path './.venv/*' -not -path './.local/*' -not -path './.git/*' | sort)

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy .
	$(VENV)/shellcheck -x --severity=style $(SHELL_SCRIPTS)
	scripts/actionlint.sh

test: lint toolchain
	$(VENV)/python -m pytest

test-unit: setup
	$(VENV)/python -m pytest -m "not integration and not protocol and not e2e" --ignore=tests/e2e

toolchain: setup
	@scripts/pulumi-toolchain.sh >/dev/null
	@scripts/kube-toolchain.sh >/dev/null

# The main job: the local stack against the simulator (see README).
up: toolchain
	@scripts/local-stack.sh up

down: toolchain
	@scripts/local-stack.sh down

# Render any stack's Kubernetes side to rendered/<stack>/ without touching its Proxmox or cluster.
STACK ?= local
render: toolchain
	$(VENV)/python -m tools.render --stack "$(STACK)"

.PHONY: preview deploy promote lint-workflows

# Real stacks (dev, staging, prod): the same commands locally and in CI (docs/delivery.md).
preview: setup
	@scripts/stack.sh preview "$(STACK)" $(ARGS)

deploy: setup
	@scripts/stack.sh deploy "$(STACK)" $(ARGS)

# A dry run unless WRITE=1.
promote: setup
	@scripts/stack.sh promote "$(FROM)" "$(TO)" $(if $(WRITE),--write)

lint-workflows: setup
	scripts/actionlint.sh
	$(VENV)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
