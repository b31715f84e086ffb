# The README's two commands: `make demo` and `make test`. Both work on a fresh machine with Python 3.11.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEMO_ARGS ?= --methods cals,wav2lip

.PHONY: demo test venv lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# The LSE agreement test's reference (syncnet_python's evaluate). --no-deps: its requirements
	# would replace the pinned CPU torch with a CUDA build.
	$(BIN)/pip install -q --no-deps syncnet-python==0.2.3
	touch $(STAMP)

venv: $(STAMP)

# Until `talkbench run` lands, the demo runs the most complete path that works: doctor, then face
# crops and landmarks for the real clips in ../shared/data/real/videos (when that folder exists).
REAL_VIDEOS ?= ../shared/data/real/videos
demo: venv
	$(BIN)/talkbench doctor
	@if [ -d "$(REAL_VIDEOS)" ]; then $(BIN)/talkbench data crop --dataset folder --root "$(REAL_VIDEOS)" --split all; \
	else echo "no real videos at $(REAL_VIDEOS): skipping the crop step"; fi

test: venv
	$(BIN)/ruff check talkbench cals baselines tests benchmarks
	$(BIN)/python -m pytest -q tests

lint: venv
	$(BIN)/ruff check talkbench cals baselines tests benchmarks

bench: venv
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
