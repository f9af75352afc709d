# labforge.instructlab — developer entry points.
#   make demo   the whole InstructLab pipeline on a local test host
#   make test   every gate: lint, sanity, unit tests, collection build, molecule
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export LABFORGE_CACHE ?= /var/cache/labforge
export CONTAINERS_CONF := $(CURDIR)/tests/testbed/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/build/collections
export MOLECULE_NO_LOG := false
export NO_COLOR := 1
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1

# Molecule scenarios run by `make test`, in this order. gpu_sim is the CUDA
# build gate: its first run compiles the CUDA wheel of llama-cpp-python (about
# 12 min on 2 idle cores; 48 min seen under load), cached in
# $(LABFORGE_CACHE)/wheelhouse by its key; a warm run compiles nothing (~11 min).
MOLECULE_SCENARIOS ?= default python nvidia_driver instructlab fleet gpu_sim

GATES := selfcheck lint sanity unit build importer ee molecule integration molecule-el9

.PHONY: help venv testbed selfcheck importer lock-importer lint sanity unit build molecule molecule-el9 ee integration test demo demo-clean clean lock-dev

help:
	@echo "make demo   run the whole pipeline on a local test host"
	@echo "make test   run every gate (lint, sanity, unit, build, molecule)"

# The controller venv: (re)created when missing or when the pinned
# requirements changed since it was built.
venv: $(VENV)/.stamp
$(VENV)/.stamp: tools/requirements-dev.txt
	@echo "[venv] creating $(VENV) from $<"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r $< 2>&1 | grep -v 'is ignored: it is neither' || true
	$(BIN)/ansible --version >/dev/null
	touch $@

# The pins already in the file are kept (uv prefers them); setuptools comes with the venv.
lock-dev: venv
	$(BIN)/uv pip compile --quiet --no-header --no-annotate --no-emit-package setuptools \
	  --python-version 3.11 tools/requirements-dev.in -o tools/requirements-dev.txt
	sed -i '1i # Pinned controller tooling: generated from requirements-dev.in by `make lock-dev`.' tools/requirements-dev.txt

# Host packages, test-host image and offline artefacts (all cached).
testbed: venv
	tests/testbed/setup-host.sh
	tests/testbed/build-image.sh >/dev/null
	tests/testbed/artefacts.sh

# The test bed proves in seconds what later gates rely on (podman networks
# resolve names, systemd boots in a test host, the CA bundle is mounted);
# `make test` stops here when it cannot.
selfcheck:
	tests/testbed/setup-host.sh
	LABFORGE_TEST_IMAGE=$$(tests/testbed/build-image.sh) tests/testbed/selfcheck.sh

lint: venv build
	ansible-lint --profile production
	antsibull-changelog lint

sanity: venv
	tools/sanity.sh

# One worker per core (pytest-xdist): 2 on the CI machine.
# pytest imports test modules by base name: two test_x.py in tests/unit fail the
# whole run ("import file mismatch"); named here first.
unit: venv build
	@dups=$$(find tests/unit -name 'test_*.py' -printf '%f\n' | sort | uniq -d); \
	if [ -n "$$dups" ]; then for d in $$dups; do echo "[unit] two test modules are named $$d:" \
	  $$(find tests/unit -name "$$d"); done; echo "[unit] give each a unique name"; exit 1; fi
	pytest -q -p no:cacheprovider -n auto tests/unit

# CI tests what users install: build the collection tarball and install it.
build: venv
	rm -rf build/collections build/dist
	mkdir -p build/dist
	ansible-galaxy collection build --force --output-path build/dist . >/dev/null
	ansible-galaxy collection install --force --no-deps -p build/collections build/dist/labforge-instructlab-*.tar.gz >/dev/null
	@ls build/dist/ && echo "[build] installed into build/collections"

molecule: venv testbed build
	set -e; export LABFORGE_TEST_IMAGE=$$(tests/testbed/build-image.sh); \
	for s in $(MOLECULE_SCENARIOS); do echo "[molecule] scenario $$s"; molecule test -s $$s; done

# Galaxy's own importer on the built tarball: 0 warnings.
importer: venv build
	tools/galaxy-importer.sh

lock-importer: venv
	$(BIN)/uv pip compile --quiet --python-version 3.11 tools/requirements-importer.in -o tools/requirements-importer.txt

# The execution environment's build context for AWX / Automation Platform
# (ansible-builder create; no image is built here).
ee: venv build
	EE_COLLECTION_TARBALL=$$(ls build/dist/labforge-instructlab-*.tar.gz) tools/ee-build-context.sh

# The ilab_* modules against a real InstructLab on test hosts
# (tests/integration/: config, downloads incl. a local OCI registry, taxonomy,
# secrets, generate/train/serve/chat with faults).
integration: venv testbed build
	set -e; export LABFORGE_TEST_IMAGE=$$(tests/testbed/build-image.sh) \
	  LABFORGE_ILAB_VENV=$$(tests/testbed/ilab-venv.sh) LABFORGE_REQUIRE_ILAB_VENV=1; \
	pytest -v -p no:cacheprovider tests/integration

# EL9 images come from public registries: skipped (and said so) where unreachable.
molecule-el9: venv testbed build
	tools/molecule-el9.sh

test: venv
	@tools/gates.sh $(GATES)

demo: venv build
	tests/testbed/demo.sh

demo-clean:
	podman rm -f labforge-demo >/dev/null 2>&1 || true

clean:
	rm -rf build
