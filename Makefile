# The README's two commands: `make demo` and `make test`. Both work on a fresh machine with Python 3.11.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEMO_ARGS ?= --methods cals,wav2lip --dataset synth-lrs2 --limit 12 --metrics psnr,ssim,lmd,lse --run-dir runs/demo

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
	# References of the FID / LPIPS / CPBD agreement tests (extra "metrics-reference"). --no-deps: they
	# require torchvision, whose only wheels here are CUDA builds that fail to import against torch+cpu.
	$(BIN)/pip install -q --no-deps pytorch-fid==0.3.0 lpips==0.1.4 cpbd==1.0.7
	# The PC-AVS audio front-end test's reference (extra "lws"): its shipped C++ does not build on 3.11.
	$(BIN)/pip install -q Cython wheel && LWS_USE_CYTHON=1 $(BIN)/pip install -q --no-build-isolation lws==1.2.8
	touch $(STAMP)

venv: $(STAMP)

# What the demo needs and no more (no test tools): a fresh clone's `make demo` installs less.
RUNTIME_STAMP := $(VENV)/.runtime-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
# pip byte-compiles each package on one core (~30 s for torch alone); `compileall -j 0` writes the same
# .pyc files on every core. Its status is ignored as pip ignores it: a few files in torch and friends do
# not compile on 3.11 and are never imported there.
$(RUNTIME_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --no-compile torch==2.13.0
	$(BIN)/pip install -q --no-compile -e .
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true
	touch $(RUNTIME_STAMP)

# The main job: CALS and Wav2Lip with their shipped synthetic checkpoints (talkbench/checkpoints/*.safetensors,
# trained by `talkbench train cals` / `talkbench train wav2lip`), scored by the shipped synthetic SyncNet
# critic, on the offline synthetic corpus's test split (only the 12 clips it uses are generated, into the
# cache, on first use), with the pipelined executor (docs/throughput.md).
demo: $(RUNTIME_STAMP)
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
