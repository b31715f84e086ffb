# The README's two commands: `make demo` and `make test`. Both work on a fresh machine with Python 3.11.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEMO_ARGS ?= --methods static --dataset synth-lrs2 --limit 12 --metrics psnr,ssim,lmd,lvd,lse --run-dir runs/demo

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

# The main job. CALS and Wav2Lip are not in the registry's installed set yet (issues #6, #7): until
# they land, the demo runs the reference methods through the full pipeline on the offline synthetic
# corpus (generated into the cache on first use): crops, generation, PSNR/SSIM/LMD/LVD, the report.
demo: venv
	$(BIN)/talkbench doctor
	$(BIN)/talkbench run $(DEMO_ARGS)

test: venv
	$(BIN)/ruff check talkbench cals baselines tests benchmarks
	$(BIN)/python -m pytest -q tests

lint: venv
	$(BIN)/ruff check talkbench cals baselines tests benchmarks

bench: venv
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
