# The README's two commands: `make run` and `make test`. Both set up `.venv` first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run repro test lint bench clean

install: $(STAMP)

# torch and torchvision are pinned and (on the dev machines) come from local disk;
# constraints.txt pins the whole tree so pip does not backtrack.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded default: DVC runs the stages of dvc.yaml with the CLI on PATH.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro stats
	$(BIN)/scene2img data summary data/processed/toyworld-vg

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/preprocess.py

clean:
	rm -rf outputs .pytest_cache .ruff_cache
