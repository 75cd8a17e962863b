# The two commands (CONTRACTS 1): `make demo` and `make test`, each from a fresh clone; and
# `make test-fast`, the suite without its slow tier, to run after every change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast demo clean

# torch is installed first and pinned: 2.13.0 is the CPU wheel on this machine, and any
# unpinned resolve would pull the newest CUDA build (several GB). A GPU user installs the CUDA
# build of torch 2.13.0 into .venv before `make install`; the pin keeps it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# Deselects the tests marked slow (Ray trials and clusters, inductor compiles, DDP/FSDP process
# groups, servers): under 5 minutes on 2 cores (BENCHMARKS.md). CI runs `make test`.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

demo: $(STAMP)
	$(BIN)/sweeps run sweeps/presets/demo.yaml --restart
	$(BIN)/sweeps fit demo

clean:
	rm -rf runs mlflow.db mlartifacts
