# Authport: `make up` runs everything locally; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint system-deps clean image
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

$(STAMP): pyproject.toml scripts/ensure-python.sh
	bash scripts/ensure-python.sh $(PYTHON) $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/python -m common.launcher

system-deps:
	bash scripts/system-deps.sh

# Two test processes, each taking whole files (module-scoped systems stay in one process): most
# tests wait on real processes and rate-limit windows, so the suite takes about 60 % of the time.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The release image, tagged with pyproject's version as compose.yaml and deploy/k8s name it.
image:
	docker build -t authport:$(VERSION) .

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info tests/.npm
