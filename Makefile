# Set-up on a fresh machine: `make run`, then `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint test-slow check bench reproduce docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[test,plot,data,progress,nir,docs]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/spikeode train yinyang --out runs/yinyang

# Two worker processes (pytest-xdist): the suite is dominated by single-threaded
# compilation, so two cores run it in about half the time. Work units (a test module,
# or a single test named in tests/conftest.py) go to whichever worker is free, heaviest
# first; a module's tests share its fixtures and compiled functions.
# (ruff first: lint errors fail the suite in a second)
# The default suite compiles as `spikeode check` does (spikeode.cli.xla_flags): XLA's
# backend optimisation level 0 and its legacy CPU fusion emitters, the same programs
# (the same HLO) compiled in far less time into less optimised machine code, since the
# suite is dominated by compilation. `make test-slow` and every measurement run fully
# optimised code.
test: lint
	XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false $$XLA_FLAGS" \
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff check

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

check: $(STAMP)
	$(BIN)/spikeode check

bench: $(STAMP)
	$(BIN)/python benchmarks/recurrent_lif.py

# Regenerates every reproduction's figure and numbers (docs/reproductions.md).
reproduce: $(STAMP)
	$(BIN)/python examples/mostafa.py
	$(BIN)/python examples/mnist_subset.py
	$(BIN)/python examples/zenke_vogels.py
	$(BIN)/python examples/fiete_seung.py
	$(BIN)/python examples/klos_memmesheimer.py
	$(BIN)/python examples/huh_sejnowski.py

# The documentation site (mkdocs.yml) into site/; `$(BIN)/mkdocs serve` to browse it
# while editing. --strict: a broken link or reference, or a public name without a
# docstring, is an error (as in tests/test_docs.py).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build site *.egg-info
