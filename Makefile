# The developer loop. Every verb sets up what it needs (a virtual environment in .venv).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CATALOG ?=
EPOCHS ?=
RECIPE ?=

.PHONY: demo test check protos bench bench-taxonomy bench-record bench-ann bench-gateway bench-encoder load curate train evaluate clean up down

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[cpu,train,dev,load]"
	touch $@

demo: $(STAMP)
	$(PY) -m infra.demo $(if $(CATALOG),--catalog $(CATALOG)) $(if $(EPOCHS),--epochs $(EPOCHS))

train: $(STAMP)
	$(PY) -m infra.train $(if $(CATALOG),--catalog $(CATALOG)) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(RECIPE),--recipe $(RECIPE))

bench: $(STAMP)
	$(PY) -m infra.bench $(if $(CATALOG),--catalog $(CATALOG))

bench-taxonomy: $(STAMP)
	$(PY) -m infra.bench_taxonomy

bench-record: $(STAMP)
	$(PY) -m infra.bench_record

bench-ann: $(STAMP)
	$(PY) -m infra.bench_ann $(if $(CATALOG),--catalog $(CATALOG))

bench-gateway: $(STAMP)
	$(PY) -m infra.bench_gateway $(if $(CATALOG),--catalog $(CATALOG)) $(ARGS)

bench-encoder: $(STAMP)
	$(PY) -m infra.bench_encoder $(if $(CATALOG),--catalog $(CATALOG)) $(ARGS)

load: $(STAMP)
	$(PY) -m infra.load $(ARGS)

curate: $(STAMP)
	$(PY) -m infra.curate --catalog $(or $(CATALOG),../shared/datasets/fashion-small)

test: $(STAMP)
	$(PY) -m pytest

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

protos: $(STAMP)
	$(PY) -m protos.generate

up: $(STAMP)
	$(PY) -m infra.cluster up

down: $(STAMP)
	$(PY) -m infra.cluster down

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
