# Authport: `make up` runs everything locally; `make test` runs every test.
# Dependencies come from the lock files in requirements/ (exact versions and hashes, made by
# pip-tools from pyproject.toml with `make lock`): `make up` installs the runtime set only,
# `make test` and `make lint` the test set on top of it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
PIP_TOOLS := pip-tools==7.6.2
LOCK := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)-lock/bin/pip-compile --quiet --generate-hashes \
	--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links

.PHONY: up test lint lock system-deps clean image
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

$(RUNTIME_STAMP): requirements/runtime.txt pyproject.toml scripts/ensure-python.sh
	bash scripts/ensure-python.sh $(PYTHON) $(VENV)
	$(PIP) --require-hashes -r requirements/runtime.txt
	$(PIP) --no-deps -e .
	touch $@

$(TEST_STAMP): $(RUNTIME_STAMP) requirements/test.txt
	$(PIP) --require-hashes -r requirements/test.txt
	touch $@

up: $(RUNTIME_STAMP)
	$(BIN)/python -m common.launcher

system-deps:
	bash scripts/system-deps.sh

# Two test processes, each taking whole files (module-scoped systems stay in one process): most
# tests wait on real processes and rate-limit windows, so the suite takes about 60 % of the time.
test: $(TEST_STAMP) system-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The release image, tagged with pyproject's version as compose.yaml and deploy/k8s name it.
image:
	docker build -t authport:$(VERSION) .

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

# After changing a dependency in pyproject.toml: resolve both sets again (in a venv of its own,
# so pip-tools never lands in the runtime set), then commit requirements/.
lock:
	test -x $(VENV)-lock/bin/pip-compile || { $(PYTHON) -m venv $(VENV)-lock && \
		$(VENV)-lock/bin/pip install --quiet --disable-pip-version-check $(PIP_TOOLS); }
	$(LOCK) -o requirements/runtime.txt pyproject.toml
	$(LOCK) --extra test -o requirements/test.txt pyproject.toml

clean:
	rm -rf $(VENV) $(VENV)-lock *.egg-info tests/.npm
