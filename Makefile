# The one command surface. `make help` lists the targets; each installs what it needs
# (virtualenv, pinned Python packages, missing Debian packages) and is quick the second time.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov has a virtualenv of its own: its bundled hcl2 module clashes with python-hcl2.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# make bench's peer, variant (p): the packages most teams instrument Flask with, kept out of .venv.
PEER_VENV := .venv-peer
DEBS := local/install-debian-packages.sh

# Debian packages per purpose (binaries the tests and the local stack run for real).
DEBS_RUN := prometheus prometheus-alertmanager
DEBS_IMAGE := podman buildah runc debootstrap
# make bench's load generators: wrk (closed loop) and h2load (open loop); its tests run them too.
DEBS_BENCH := wrk nghttp2-client
# libatomic1: Playwright's bundled node driver links it; jq: the workflows' scripts the tests run;
# the bench's generators: tests/loadtest/test_bench.py runs both.
DEBS_TEST := $(DEBS_RUN) $(DEBS_IMAGE) $(DEBS_BENCH) chromium graphviz libatomic1 jq
# make fresh-check: podman, debootstrap for the pristine image, catatonit as the containers' init.
DEBS_FRESH := podman runc debootstrap catatonit

# pip on these machines warns about every configured file:// index that lacks a package; keep
# errors, drop that noise.
PIP_INSTALL = 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) $(PY) -m pip install -q

# pytest arguments, e.g. `make test PYTEST_ARGS="-k api -x"`.
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------------------------------------
# Set-up (files as targets, so a second run does nothing). Each target below asks for only what it
# runs: the checkov and peer virtualenvs and the test-only Debian packages come with `make test`
# (and the folder checks that use them), not with `make slo-check` or `make lint`.

# A fresh Debian has python3 without venv/ensurepip; install python3-venv only when missing.
$(PY):
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || ./$(DEBS) python3-venv
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run.stamp: $(PY) app/requirements.txt local/requirements.txt
	$(PIP_INSTALL) -r local/requirements.txt
	@touch $@

$(VENV)/.test.stamp: $(VENV)/.run.stamp tests/requirements.txt
	$(PIP_INSTALL) -r tests/requirements.txt
	@touch $@

$(CHECKOV_VENV)/.stamp: tests/requirements-checkov.txt | $(PY)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) \
	  $(CHECKOV_VENV)/bin/python -m pip install -q -r tests/requirements-checkov.txt
	@touch $@

$(PEER_VENV)/.stamp: loadtest/requirements-peer.txt | $(PY)
	$(PYTHON) -m venv $(PEER_VENV)
	2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) \
	  $(PEER_VENV)/bin/python -m pip install -q -r loadtest/requirements-peer.txt
	@touch $@

.PHONY: deps-run deps-test
deps-run: $(VENV)/.run.stamp
	@./$(DEBS) $(DEBS_RUN)

deps-test: $(VENV)/.test.stamp $(CHECKOV_VENV)/.stamp $(PEER_VENV)/.stamp
	@./$(DEBS) $(DEBS_TEST)

# ---------------------------------------------------------------------------------------------
# Local stack

.PHONY: run
run: deps-run ## Start PostgreSQL, the app (:8000), Prometheus (:9090) and Alertmanager (:9093); Ctrl-C stops
	$(PY) -m local.stack run

.PHONY: clean-local
clean-local: $(VENV)/.run.stamp ## Delete the local stack's state (.local/) and its embedded database
	$(PY) -m local.stack remove

.PHONY: migrate
migrate: deps-run ## Apply database migrations to DATABASE_URL
	$(PY) -m app.migrate

.PHONY: seed
seed: deps-run ## Insert the sample tasks into DATABASE_URL (idempotent)
	$(PY) -m app.seed

# ---------------------------------------------------------------------------------------------
# Load

.PHONY: loadtest
loadtest: deps-run $(VENV)/.test.stamp ## Locust web UI on :8089 against the local stack (or LOCUST_HOST)
	$(PY) -m loadtest.webui

.PHONY: slo-check
slo-check: deps-run $(VENV)/.test.stamp ## The SLO gate: Locust load, SLIs vs objectives, drills that must fire alerts (reports/slo/); exit 0 passed, 1 an SLO or drill failed, 2 could not measure
	$(PY) -m loadtest.slo_check

.PHONY: hpa-test
hpa-test: $(VENV)/.test.stamp ## Scale test on a real cluster: load it, assert replicas rise, no page alert, replicas fall
	$(PY) -m loadtest.hpa_test

.PHONY: bench
bench: deps-run $(VENV)/.test.stamp $(PEER_VENV)/.stamp ## Benchmark: the service vs a bare baseline, itself uninstrumented and the usual instrumentation (reports/bench/)
	@./$(DEBS) $(DEBS_BENCH)
	$(PY) -m loadtest.bench

# ---------------------------------------------------------------------------------------------
# Image

.PHONY: image
image: deps-run ## Build the service image with docker or podman (pulls the base image)
	$(PY) -m local.image build --tag dev

.PHONY: fresh-check
fresh-check: $(VENV)/.run.stamp ## The README's make run and make test on a pristine Debian 12 container (reports/fresh/)
	@./$(DEBS) $(DEBS_FRESH)
	$(PY) -m local.fresh

.PHONY: image-test
image-test: deps-run $(VENV)/.test.stamp ## Build the image offline with podman and run it read-only, non-root, against PostgreSQL
	@./$(DEBS) $(DEBS_IMAGE)
	$(PY) -m pytest -s tests/app/test_image.py

# ---------------------------------------------------------------------------------------------
# Checks

SHELL_SCRIPTS = $(shell git ls-files '*.sh') .ci/run

.PHONY: lint
lint: $(VENV)/.test.stamp ## ruff, mypy --strict, shellcheck, yamllint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/shellcheck $(SHELL_SCRIPTS)
	$(VENV)/bin/yamllint --strict .

.PHONY: test
test: deps-test ## Lint, then every test (real PostgreSQL, Prometheus, Alertmanager, Chromium)
	@status=0; $(MAKE) lint || status=$$?; \
	$(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	exit $$status

# The edit-test loop: only the virtualenv, no lint, no Debian package; tests/tiers.py says what is slow.
.PHONY: test-fast
test-fast: $(VENV)/.test.stamp ## The unit tier, under a minute: every test not marked slow (no server, browser, container or scanner)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

.PHONY: format
format: $(VENV)/.test.stamp ## Rewrite Python files in the project's format
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: lock
PIP_COMPILE = ../$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links

lock: $(VENV)/.test.stamp ## Re-pin requirements*.txt from the requirements*.in files
	cd app && $(PIP_COMPILE) -o requirements.txt requirements.in
	cd local && $(PIP_COMPILE) -o requirements.txt requirements.in
	cd tests && $(PIP_COMPILE) -o requirements.txt requirements.in
	cd tests && $(PIP_COMPILE) -o requirements-checkov.txt requirements-checkov.in
	cd loadtest && $(PIP_COMPILE) -o requirements-peer.txt requirements-peer.in

.PHONY: clean
clean: ## Remove the virtualenv and reports (keeps the local database in .local/)
	rm -rf $(VENV) $(CHECKOV_VENV) $(PEER_VENV) reports .mypy_cache .ruff_cache .pytest_cache

# ---------------------------------------------------------------------------------------------
# Generated files

# One entry point for every generated file (observability/generated.py); grafanalib is a test dependency.
.PHONY: generate
generate: $(VENV)/.test.stamp ## Render every generated file (rules, runbooks, data sources, trace pipeline, dashboards, k8s/ copies), delete orphans
	$(PY) -m observability.generated

.PHONY: generate-check
generate-check: $(VENV)/.test.stamp ## Write nothing; fail listing each generated file that is stale, missing or orphaned
	$(PY) -m observability.generated --check

# ---------------------------------------------------------------------------------------------
# One folder's checks: what the path-filtered workflows of .github/ run (`make test` runs them all)

.PHONY: k8s-check
k8s-check: $(VENV)/.test.stamp $(CHECKOV_VENV)/.stamp ## Render and validate every kustomization (tests/k8s)
	$(PY) -m pytest $(PYTEST_ARGS) tests/k8s

.PHONY: infra-check
infra-check: $(VENV)/.test.stamp $(CHECKOV_VENV)/.stamp ## Static proofs of infra/: HCL, pins, checkov, trivy, run.sh
	$(PY) -m pytest $(PYTEST_ARGS) tests/infra

.PHONY: obs-check
obs-check: deps-run $(VENV)/.test.stamp ## promtool/amtool tests, rules, dashboards on a live Prometheus
	$(PY) -m pytest $(PYTEST_ARGS) tests/observability tests/dashboards

.PHONY: architecture
architecture: $(VENV)/.test.stamp ## Draw docs/architecture/architecture.png from its source (Graphviz)
	@./$(DEBS) graphviz
	$(PY) docs/architecture/diagram.py
