"""The paper scale's dress rehearsal: config/paper.yaml run, not only planned, with every model a tiny random one of
the same architecture and module names and every hub dataset a small local file in its own schema
(config/rehearsal.yaml, assets written by tests/rehearsal.py), through to the tables, the claims ledger and the site.

The whole DAG (every group, variant and table of the paper config) is slow: `make test-all` runs it. `make test` runs
a slice: the same two files merged, then cut to one or two of the paper's tasks per group, variants and table cells,
so that every rule of the paper DAG still runs at least once, on the same hub loaders, T5 layout and Stable Diffusion
path.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from molebench.report import budget
from tests.rehearsal import write_assets

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", ".venv", "results", "reports", ".snakemake", "raw", "__pycache__", "*.egg-info",
                                "rehearsal")
RES, REP = "results/rehearsal", "reports/rehearsal"


def merged(base: dict, override: dict) -> dict:
    """Snakemake's merge of a second --configfile: mappings key by key, everything else replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def rehearsal_config() -> dict:
    return merged(yaml.safe_load((REPO / "config/paper.yaml").read_text()),
                  yaml.safe_load((REPO / "config/rehearsal.yaml").read_text()))


def sliced(config: dict) -> dict:
    """The rehearsal cut to the fewest jobs that still run every rule of the paper DAG (each job costs seconds of
    start-up, so the slice keeps one or two of each: two tasks where a composition needs two LoRAs)."""
    nli = ["paper_anli_r1", "paper_qnli"]
    config["groups"] = {"nli": nli, "bbh_from_nli": ["paper_bbh_ruin_names"], "commonsense": ["paper_cs_piqa"],
                        "commonsense_lm_eval": ["piqa"]}
    config["compose_from"] = {"bbh_from_nli": nli, "commonsense_lm_eval": ["paper_cs_piqa"]}
    used = ["zero-shot", "single", "mole", "multitask", "multitask-layers-80-100", "mixlora-st", "mixlora-mt"]
    config["variants"] = {name: config["variants"][name] for name in used}
    cells = {"table3": (["nli"], ["zero-shot", "mole"]), "table5": (["nli"], ["multitask", "multitask-layers-80-100"]),
             "table8": (["bbh_from_nli"], ["mole"]), "mixlora_single": (["commonsense"], ["mixlora-st"]),
             "mixlora_multi": (["commonsense"], ["mixlora-mt"]),
             "mixlora_multi_lm_eval": (["commonsense_lm_eval"], ["mixlora-mt"])}
    config["tables"] = {name: {**config["tables"][name], "groups": groups, "variants": variants}
                        for name, (groups, variants) in cells.items()}
    config["masking"].update(group="nli", variants=["mole"])
    config["figures"] = {name: {**config["figures"][name], "variants": variants}
                         for name, variants in (("figure7", ["mole"]), ("mixlora_utilisation", ["mixlora-st"]))}
    config["figures"]["figure7"]["group"] = "nli"
    ramole = config["ramole"]
    ramole["pool"] = {"nli": nli}
    ramole["retriever"].update(top_k=1, finetune_tasks=nli)  # OOD top-1 retrieval needs two LoRAs
    ramole["methods"] = {"ramole": ramole["methods"]["ramole"], "mixture": None}
    t2i = config["t2i"]
    subjects = ["cat", "dog"]
    t2i["subjects"] = {name: t2i["subjects"][name] for name in subjects}
    t2i["compositions"] = [subjects]
    t2i["variants"] = {name: t2i["variants"][name] for name in ("svdiff", "l-mole")}
    for table in t2i["tables"].values():
        table.update(sizes=[2], columns={label: v for label, v in table["columns"].items() if v in t2i["variants"]})
    return config


def run(copy: Path, *configs: str) -> set[str]:
    """Run the DAG to the site; the rules whose jobs ran (a rule made per batch as its stage: evaluate)."""
    done = subprocess.run([sys.executable, "-m", "snakemake", "reproduce", "--cores", "2", "--configfile", *configs],
                          cwd=copy, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-6000:]
    rules = re.findall(r"^(?:local)?rule ([\w-]+):", done.stdout + done.stderr, re.MULTILINE)
    return {budget.stage(r) for r in rules}


def paper_rules(copy: Path) -> set[str]:
    """Every rule of the paper DAG, from its plan (by stage, as `run` gives them)."""
    done = subprocess.run([sys.executable, "-m", "snakemake", "reproduce", "-n", "--configfile", "config/paper.yaml"],
                          cwd=copy, capture_output=True, text=True, check=True)
    return set(budget.job_counts(done.stdout)) - {"total"}


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("rehearsal") / "molebench"
    shutil.copytree(REPO, copy, ignore=IGNORE)
    write_assets(copy / "rehearsal")
    return copy


def check_outputs(copy: Path, config: dict) -> None:
    for name, spec in config["tables"].items():
        table = pd.read_csv(copy / RES / "tables" / f"{name}.csv")
        for variant in spec["variants"]:
            assert table[f"{variant}:mean"].notna().all(), (name, variant)
    site = copy / REP / "site"
    for page in [*config["tables"], *config["figures"], "masking", "claims", "lora_gain"]:
        assert (site / f"{page}.html").is_file(), page
    claims = pd.read_csv(copy / RES / "tables" / "claims.csv")
    assert len(claims) and set(claims.verdict) <= {"holds", "fails", "not enough evidence",
                                                   "not testable at this scale"}
    base = yaml.safe_load((copy / RES / "base" / "config.json").read_text())
    assert base["model_type"] == "t5" and base["feed_forward_proj"] == "gated-gelu"  # FLAN-T5's layout


def test_a_slice_of_the_rehearsal_runs_every_rule_of_the_paper_dag(copy):
    config = sliced(rehearsal_config())
    (copy / "config" / "rehearsal-slice.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    ran = run(copy, "config/rehearsal-slice.yaml")
    check_outputs(copy, config)
    assert ran == paper_rules(copy)
    # the training recipe ran in epochs: one pass over each task's 16 training records at batch 4
    run_info = yaml.safe_load((copy / RES / "adapters" / "paper_qnli" / "seed1" / "run.json").read_text())
    assert run_info["train_info"]["steps"] == 4
    # lm-eval's piqa scored the multi-task MixLoRA trained once, for the commonsense group
    scored = yaml.safe_load((copy / RES / "metrics/mixlora-mt/commonsense_lm_eval/seed1/piqa.json").read_text())
    assert scored["protocol"]["harness"].startswith("lm-eval") and scored["n"] == 6
    assert not (copy / RES / "methods/mixlora-mt/commonsense_lm_eval").exists()


@pytest.mark.slow
def test_the_whole_paper_dag_runs_on_tiny_stand_ins(copy):
    shutil.rmtree(copy / RES, ignore_errors=True)
    shutil.rmtree(copy / REP, ignore_errors=True)
    ran = run(copy, "config/paper.yaml", "config/rehearsal.yaml")
    check_outputs(copy, rehearsal_config())
    assert ran == paper_rules(copy)


@pytest.mark.slow
def test_the_llama_override_runs_mixlora_and_ramole_tables(copy):
    """docs/scales.md's Llama-2-7B override (MixLoRA's and RAMoLE's base) on a tiny random LLaMA with Llama-2's
    module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj): their tables, from the slice."""
    config = sliced(rehearsal_config())
    config.update(model={"source": "tiny-random", "arch": "llama", "hidden_size": 32, "heads": 4, "kv_heads": 2,
                         "layers": 2, "vocab_size": 512},
                  results_dir="results/rehearsal-llama2", reports_dir="reports/rehearsal-llama2")
    (copy / "config" / "rehearsal-llama2.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    tables = ["mixlora_single", "mixlora_multi", "ramole_retrieval", "ramole_mixed_iid", "ramole_mixed_ood"]
    done = subprocess.run([sys.executable, "-m", "snakemake", *[f"results/rehearsal-llama2/tables/{t}.csv"
                                                                for t in tables],
                           "--cores", "2", "--configfile", "config/rehearsal-llama2.yaml"],
                          cwd=copy, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-6000:]
    for name in tables:
        assert len(pd.read_csv(copy / "results/rehearsal-llama2/tables" / f"{name}.csv")), name
