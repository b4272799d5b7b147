# The README's two commands: `make run` and `make test`. Both set up `.venv` first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run repro test test-tools image image-tools lint bench clean

install: $(STAMP)

# torch and torchvision are pinned and (on the dev machines) come from local disk;
# constraints.txt pins the whole tree so pip does not backtrack. --no-compile: Python compiles
# what it imports on first use, rather than pip byte-compiling every file of a 6.5 GB tree.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded default: the whole retraining DAG with the KFP local runner on
# the toy world (MLflow in a local SQLite file), ending in a registered model.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/scene2img pipeline run --local --experiment demo

# The DVC stages on the toy world, one model family: FAMILY=lostgan (dvc.yaml) or FAMILY=bachgan
# (pipelines/bachgan/dvc.yaml), as pipeline.family selects it in the KFP DAG.
FAMILY ?= lostgan
repro: install
	@case "$(FAMILY)" in lostgan) f=dvc.yaml;; bachgan) f=pipelines/bachgan/dvc.yaml;; \
	  *) echo "FAMILY must be lostgan or bachgan, not '$(FAMILY)'" >&2; exit 2;; esac; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro $$f

# Test-only system tools: Debian's chromium renders the compare page in a real browser.
test-tools:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the browser test" >&2; exit 1; fi; }

test: install test-tools
	$(BIN)/python -m pytest -q

# The image the pipeline's components run in (infra/docker/Dockerfile), built with podman (or a
# running docker) as root or rootless, no registry needed; see infra/docker/build_image.py.
#   make image [INCEPTION_WEIGHTS=PATH] [CUDA_IMAGE=REF] [ENGINE=podman|docker]
image: image-tools
	$(PY) infra/docker/build_image.py

# Its tools, Debian's packages: podman with runc (uidmap and slirp4netns for rootless use) and
# mmdebstrap for a local base where the CUDA one cannot be pulled; installed when root.
IMAGE_TOOLS := podman runc uidmap slirp4netns mmdebstrap
image-tools:
	@missing=; for t in podman runc newuidmap slirp4netns mmdebstrap; do \
	  command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ] && ! { docker info >/dev/null 2>&1 && command -v mmdebstrap >/dev/null; }; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(IMAGE_TOOLS); \
	  else echo "make image needs Debian's$$missing: sudo apt-get install --no-install-recommends $(IMAGE_TOOLS) (or run docker and install mmdebstrap)" >&2; exit 1; fi; fi

lint: install
	$(BIN)/ruff check .

# The benchmarks that need no trained model, into one file: benchmarks/results/bench.json (commit,
# machine, load, each figure with its work and rate). BENCH=quick takes a few minutes on 2 cores;
# BENCH=full runs the scripts' own defaults (the README's settings); BENCH=tiny, seconds (the test's).
BENCH ?= quick
bench: install
	$(BIN)/python benchmarks/bench.py --preset $(BENCH)

clean:
	rm -rf outputs .pytest_cache .ruff_cache
