"""tables.py on synthetic metric files: 3 seeds, two variants, two tasks in one group."""

import json
import math
import statistics

import pandas as pd
import pytest

from molebench.core.data import TaskSpec
from molebench.nlp.report import build_table, load_metrics, lora_gain_table

GROUPS = {"g1": ["t_a", "t_b"]}
SEEDS = [1, 2, 3]
TASKS = {
    "t_a": TaskSpec(name="t_a", family="fam", source={"kind": "jsonl"}, metrics=("rouge1", "rougeL"),
                    paper_task="Task A"),
    "t_b": TaskSpec(name="t_b", family="fam", source={"kind": "jsonl"}, metrics=("accuracy",), paper_task="Task B"),
}


def score(variant: str, task: str, metric: str, seed: int) -> float:
    """A distinct, known value per cell so means and stds can be checked by hand."""
    base = {"single": 40.0, "mole": 50.0, "zero-shot": 10.0}[variant]
    return base + {"t_a": 0.0, "t_b": 20.0}[task] + {"rouge1": 5.0, "rougeL": 0.0, "accuracy": 0.0}[metric] + seed


def write_metrics(root, variants=("single", "mole"), seeds=SEEDS, score_fn=score) -> list[str]:
    paths = []
    for variant in variants:
        for task, spec in TASKS.items():
            for seed in seeds:
                path = root / "results/metrics" / variant / "g1" / task / f"seed{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({
                    "variant": variant, "method": variant, "group": "g1", "task": task, "family": spec.family,
                    "seed": seed, "metrics": {m: score_fn(variant, task, m, seed) for m in spec.metrics}, "n": 50,
                    "cost": {"trainable_params": 120 if variant == "mole" else 0, "inference_params": 1000,
                             "extra_params": 0, "extra_flops_per_token": 3000 if variant == "mole" else 0,
                             "extra_flops_percent": 0.5 if variant == "mole" else 0.0},
                    "run_info": {"git_commit": "abc", "git_dirty": False, "config_hash": "h1",
                                 "versions": {"torch": "2.4"}, "hardware": {"cpu_count": 2}}, "seconds": 1.5}))
                paths.append(str(path))
    return paths


def write_paper(path) -> str:
    rows = [(3, "fam", "Task A", "Rouge-1", "MoLE", 55.5), (3, "fam", "Task A", "Rouge-1", "LoRAHub", 44.4),
            (3, "fam", "task b", "EM", "MoLE", 66.6), (3, "fam", "Average", "EM", "MoLE", 77.7),
            (3, "other", "Average", "EM", "MoLE", 11.1)]
    pd.DataFrame(rows, columns=["table", "family", "paper_task", "metric", "method", "value"]).to_csv(path, index=False)
    return str(path)


SPEC = {"title": "T", "groups": ["g1"], "variants": ["single", "mole"]}
VARIANT_SEEDS = {"single": SEEDS, "mole": SEEDS}


def test_load_metrics_is_tidy(tmp_path):
    df = load_metrics(write_metrics(tmp_path))
    assert list(df.columns) == ["variant", "method", "group", "family", "task", "seed", "metric", "value"]
    assert len(df) == 2 * 3 * 3  # variants x (rouge1, rougeL, accuracy) x seeds
    row = df[(df.variant == "mole") & (df.task == "t_a") & (df.metric == "rouge1") & (df.seed == 2)]
    assert row.value.item() == score("mole", "t_a", "rouge1", 2)


def test_build_table_means_and_stds(tmp_path):
    df = load_metrics(write_metrics(tmp_path))
    table = build_table("t", SPEC, df, TASKS, GROUPS, VARIANT_SEEDS)
    assert list(zip(table.task, table.metric)) == [("t_a", "rouge1"), ("t_a", "rougeL"), ("t_b", "accuracy"),
                                                   ("average", "average")]
    assert list(table.kind) == ["task", "task", "task", "average"]
    for variant in ("single", "mole"):
        for row in table[table.kind == "task"].itertuples():
            values = [score(variant, row.task, row.metric, s) for s in SEEDS]
            got = table.loc[row.Index]
            assert got[f"{variant}:mean"] == pytest.approx(statistics.mean(values))
            assert got[f"{variant}:std"] == pytest.approx(statistics.stdev(values))
            assert got[f"{variant}:n_seeds"] == 3
        per_seed = [statistics.mean(score(variant, t, m, s) for t, m in [("t_a", "rouge1"), ("t_a", "rougeL"),
                                                                            ("t_b", "accuracy")]) for s in SEEDS]
        avg = table[table.kind == "average"].iloc[0]
        assert avg[f"{variant}:mean"] == pytest.approx(statistics.mean(per_seed))
        assert avg[f"{variant}:std"] == pytest.approx(statistics.stdev(per_seed))


def test_single_seed_variant_has_nan_std(tmp_path):
    paths = write_metrics(tmp_path) + write_metrics(tmp_path, variants=("zero-shot",), seeds=[0])
    spec = {**SPEC, "variants": ["zero-shot", "mole"]}
    table = build_table("t", spec, load_metrics(paths), TASKS, GROUPS, {"zero-shot": [0], "mole": SEEDS})
    assert (table["zero-shot:n_seeds"] == 1).all()
    assert table["zero-shot:std"].isna().all()


def test_missing_file_is_named(tmp_path):
    paths = [p for p in write_metrics(tmp_path) if not p.endswith("mole/g1/t_b/seed2.json")]
    with pytest.raises(FileNotFoundError, match="results/metrics/mole/g1/t_b/seed2.json"):
        build_table("t", SPEC, load_metrics(paths), TASKS, GROUPS, VARIANT_SEEDS)


def test_missing_variant_names_all_its_files(tmp_path):
    df = load_metrics(write_metrics(tmp_path))
    spec = {**SPEC, "variants": ["single", "nla"]}
    with pytest.raises(FileNotFoundError) as err:
        build_table("t", spec, df, TASKS, GROUPS, {**VARIANT_SEEDS, "nla": SEEDS})
    for task in ("t_a", "t_b"):
        for seed in SEEDS:
            assert f"results/metrics/nla/g1/{task}/seed{seed}.json" in str(err.value)


def test_file_missing_a_metric_is_named(tmp_path):
    paths = write_metrics(tmp_path)
    path = tmp_path / "results/metrics/mole/g1/t_a/seed3.json"
    rec = json.loads(path.read_text())
    del rec["metrics"]["rougeL"]
    path.write_text(json.dumps(rec))
    with pytest.raises(FileNotFoundError, match=r"mole/g1/t_a/seed3.json \(no 'rougeL'\)"):
        build_table("t", SPEC, load_metrics(paths), TASKS, GROUPS, VARIANT_SEEDS)


def test_paper_values_attach_to_matching_rows(tmp_path):
    df = load_metrics(write_metrics(tmp_path))
    spec = {**SPEC, "paper": write_paper(tmp_path / "paper.csv")}
    table = build_table("t", spec, df, TASKS, GROUPS, VARIANT_SEEDS).set_index(["task", "metric"])
    assert table.loc[("t_a", "rouge1"), "paper:MoLE"] == 55.5
    assert table.loc[("t_a", "rouge1"), "paper:LoRAHub"] == 44.4
    assert math.isnan(table.loc[("t_a", "rougeL"), "paper:MoLE"])  # the paper has no Rouge-L for Task A
    assert table.loc[("t_b", "accuracy"), "paper:MoLE"] == 66.6  # case-insensitive task, accuracy <-> EM
    assert table.loc[("average", "average"), "paper:MoLE"] == 77.7  # the Average of family "fam", not "other"


def test_paper_rows_compare_a_group_average_with_a_named_paper_row(tmp_path):
    """MoLE Table 6: each size's group average against the paper's "8 LoRAs" row, not the family's Average."""
    df = load_metrics(write_metrics(tmp_path))
    paper = pd.DataFrame([(6, "fam", "8 LoRAs", "EM", "MoLE", 36.6), (6, "fam", "Average", "EM", "MoLE", 38.3)],
                         columns=["table", "family", "paper_task", "metric", "method", "value"])
    paper.to_csv(tmp_path / "t6.csv", index=False)
    spec = {**SPEC, "paper": str(tmp_path / "t6.csv"), "paper_rows": {"g1": "8 loras"}}
    table = build_table("t", spec, df, TASKS, GROUPS, VARIANT_SEEDS).set_index(["task", "metric"])
    assert table.loc[("average", "average"), "paper_task"] == "8 loras"
    assert table.loc[("average", "average"), "paper:MoLE"] == 36.6  # case ignored, as for task rows
    assert math.isnan(table.loc[("t_a", "rouge1"), "paper:MoLE"])


def test_gain_valid_both_ways(tmp_path):
    def noisy(variant, task, metric, seed):
        if variant == "zero-shot":
            return 10.0
        # t_a: clear gain (+30, spread 1); t_b: gain +1 with spread 10
        return 40.0 + seed if task == "t_a" else 11.0 + 10.0 * (seed - 2)

    paths = write_metrics(tmp_path, variants=("single",), score_fn=noisy)
    paths += write_metrics(tmp_path, variants=("zero-shot",), seeds=[0], score_fn=noisy)
    gain = lora_gain_table(load_metrics(paths), GROUPS, TASKS, "zero-shot", "single").set_index("task")
    assert gain.loc["t_a", "metric"] == "rouge1"
    assert gain.loc["t_a", "gain"] == pytest.approx(32.0)
    assert bool(gain.loc["t_a", "valid"]) is True
    assert bool(gain.loc["t_b", "valid"]) is False
    assert gain.loc["t_b", "n_seeds"] == 3


def test_gain_needs_three_seeds(tmp_path):
    paths = write_metrics(tmp_path, variants=("single",), seeds=[1, 2])
    paths += write_metrics(tmp_path, variants=("zero-shot",), seeds=[0])
    gain = lora_gain_table(load_metrics(paths), GROUPS, TASKS, "zero-shot", "single")
    assert not gain.valid.any()
    assert set(gain.reason) == {"fewer than 3 seeds"}


def test_gain_missing_zero_shot_is_named(tmp_path):
    df = load_metrics(write_metrics(tmp_path, variants=("single",)))
    with pytest.raises(FileNotFoundError, match=r"results/metrics/zero-shot/g1/t_a/seed\*.json"):
        lora_gain_table(df, GROUPS, TASKS, "zero-shot", "single")
