# The two commands a newcomer runs (see README): `make demo` and `make test`.
# Both create the virtualenv and install on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test test-minimum lint typecheck kafka-start kafka-stop clean

# setup.py builds the optional compiled kernels (Cython); a changed .pyx or .pxi reinstalls
$(BIN)/.installed: pyproject.toml setup.py $(wildcard src/spikedetect/kernel/*.pyx src/spikedetect/kernel/*.pxi)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/spikedetect demo

# scripts/test-deps installs chromium (and Java/Maven when no broker answers) with apt-get when
# it can, or says in one line what is missing and how to get it
test: $(BIN)/.installed
	scripts/test-deps
	$(BIN)/pytest

# the declared lower bounds, pinned (constraints/minimum.txt), in a venv of their own
test-minimum:
	$(PYTHON) -m venv .venv-min
	.venv-min/bin/pip install -q -c constraints/minimum.txt -e '.[test]'
	.venv-min/bin/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

kafka-start: $(BIN)/.installed
	$(BIN)/spikedetect kafka start

kafka-stop: $(BIN)/.installed
	$(BIN)/spikedetect kafka stop

clean:
	rm -rf $(VENV) .venv-min build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache \
		src/spikedetect/kernel/_count.c src/spikedetect/kernel/_closing.c src/spikedetect/kernel/*.so
