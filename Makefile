# Two commands do everything on a fresh machine:
#   make train   build .venv (CPU torch first), then run the default experiment
#   make test    build .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch: the CPU build, pinned, installed before everything else so that no other
# requirement can pull a multi-GB CUDA build. Where pip's default index serves a
# CUDA wheel, pass e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= dev,sweeps,parquet,tracking
# One pytest worker per core (pytest-xdist; worksteal: an idle worker takes queued tests from a busy one);
# PYTEST_ARGS="-n 0 -x" runs them in this process, one by one.
PYTEST_ARGS ?= -n auto --dist worksteal
STAMP := $(VENV)/.semiad-installed

.PHONY: install train test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/semiad train $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check semiad_cli tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
