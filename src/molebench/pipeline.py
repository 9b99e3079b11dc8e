"""The DAG's stages as plain functions. Each workflow script is a thin adapter that calls one of these, so every
stage also runs without Snakemake (tests call them directly). Every output is written atomically and carries its
provenance."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from molebench import io
from molebench.data import BIGBENCH_ARCHIVE, build_splits, load_task


def base_model(model_cfg: dict, out_dir: str) -> None:
    from molebench.models import materialise_base

    materialise_base(model_cfg, out_dir)


def bigbench_archive(raw_dir: str) -> None:
    """`pip download` the bigbench sdist (358 MB) into raw_dir; its task files are streamed from it, never unpacked."""
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, "bigbench==1.0.0"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"could not download bigbench==1.0.0 from the package index:\n{done.stderr}")
        os.replace(Path(tmp) / BIGBENCH_ARCHIVE, raw / BIGBENCH_ARCHIVE)


@contextlib.contextmanager
def logged(log_file: str | None, threads: int = 1, offline: bool = True):
    """Run a stage: torch threads, offline hub settings, and stdout/stderr (progress bars too) into the rule's log."""
    from molebench.models import set_offline

    torch.set_num_threads(threads)
    if offline:
        set_offline()
    if log_file is None:
        yield
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException:
            traceback.print_exc()  # into the log, which Snakemake shows when the job fails
            raise


def task_data(task: str, data_cfg: dict, out_dir: str) -> None:
    write_splits(load_task(task), data_cfg, out_dir)


def write_splits(spec, data_cfg: dict, out_dir: str) -> None:
    """A task's fixed splits and their report into out_dir (train.jsonl, test.jsonl, report.json)."""
    splits, report = build_splits(spec, data_cfg["n_train"], data_cfg["n_test"], data_cfg["split_seed"],
                                  data_cfg["raw_dir"])
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, records in splits.items():
            io.write_jsonl(tmp / f"{name}.jsonl", records)
        io.write_json(tmp / "report.json", report)


def checkpoint_dir(out_dir: str) -> Path:
    """Checkpoints live beside an output, not in it: Snakemake deletes the outputs of a failed job, not their
    checkpoints, so a re-run resumes. Removed once the output is complete."""
    out = Path(out_dir)
    return out.parent / f".{out.name}.checkpoint"


def train_lora(base_dir: str, task: str, data_dir: str, lora_cfg: dict, train_cfg: dict, seed: int,
               out_dir: str) -> None:
    from molebench.models import load_base
    from molebench.training import TrainConfig
    from molebench.training import train_lora as train

    model, tokenizer = load_base(base_dir)
    records = io.read_jsonl(Path(data_dir) / "train.jsonl")
    with io.atomic_path(out_dir) as tmp:
        info = train(model, tokenizer, records, lora_cfg, TrainConfig.from_dict(train_cfg), seed, tmp,
                     desc=f"lora {task} seed {seed}", checkpoint_dir=checkpoint_dir(out_dir))
        io.write_json(tmp / "run.json", {"task": task, "train_info": info, "run_info": io.provenance(
            {"lora": lora_cfg, "train": train_cfg, "base": str(base_dir)}, seed)})
    shutil.rmtree(checkpoint_dir(out_dir), ignore_errors=True)


def _build(variant: dict, base_dir: str, adapter_dirs: list[str]):
    from molebench import methods
    from molebench.adapters import load_expert
    from molebench.models import load_base

    cls = methods.get(variant["method"])
    method = cls(cls.config_class.from_dict(variant.get("options", {})))
    model, tokenizer = load_base(base_dir)
    base_params = sum(p.numel() for p in model.parameters())
    experts = [load_expert(d, model, name=Path(d).parent.name) for d in adapter_dirs]
    return method, method.build(model, experts), tokenizer, base_params


def compose(variant_name: str, variant: dict, base_dir: str, adapter_dirs: list[str], data_dirs: list[str],
            train_cfg: dict, seed: int, out_dir: str) -> None:
    """Build a method over the group's LoRAs, fit it when it trains, and save its state."""
    from molebench.training import TrainConfig, Trainer, seed_everything

    seed_everything(seed)
    method, model, tokenizer, _ = _build(variant, base_dir, adapter_dirs)
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        info = {}
        if method.trainable:
            records = [r for d in data_dirs for r in io.read_jsonl(Path(d) / "train.jsonl")]
            trainer = Trainer(TrainConfig.from_dict({**train_cfg, **variant.get("train", {})}), seed,
                              tmp / "train_log.jsonl", f"{variant_name} seed {seed}", checkpoint_dir(out_dir))
            info = method.fit(model, tokenizer, records, trainer)
        method.save(model, tmp)
        report = method.gate_report(model)
        if report is not None:
            io.write_json(tmp / "gates.json", report)
        io.write_json(tmp / "run.json", {"variant": variant_name, "train_info": info, "run_info": io.provenance(
            {"variant": variant, "train": train_cfg, "adapters": adapter_dirs}, seed)})
    shutil.rmtree(checkpoint_dir(out_dir), ignore_errors=True)


def evaluate(variant_name: str, variant: dict, group: str, tasks: list[str], base_dir: str, adapter_dirs: list[str],
             method_dir: str | None, data_dirs: list[str], eval_cfg: dict, seed: int, out_dir: str) -> None:
    """Build the composition once and score it on every task of its group: out_dir/{task}.json (+ predictions)."""
    from molebench.accounting import cost
    from molebench.scoring import evaluate as score
    from molebench.training import seed_everything

    seed_everything(seed)
    eval_cfg = {**eval_cfg, **variant.get("eval", {})}
    method, model, tokenizer, base_params = _build(variant, base_dir, adapter_dirs)
    trained = 0
    if method_dir:
        method.load(model, method_dir)
        trained = io.read_json(Path(method_dir) / "run.json")["train_info"]["trainable_params"]
    costs = cost(model, base_params, trained)
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for task, data_dir in zip(tasks, data_dirs, strict=True):
            start = time.time()
            spec = load_task(task)
            records = method.prompts(io.read_jsonl(Path(data_dir) / "test.jsonl"),
                                     io.read_jsonl(Path(data_dir) / "train.jsonl"), seed)
            result = score(model, tokenizer, spec, records, eval_cfg["batch_size"], eval_cfg["max_input_tokens"],
                           eval_cfg.get("bf16", False), eval_cfg.get("mc_scoring", "loglikelihood"))
            io.write_jsonl(tmp / f"{task}.predictions.jsonl", result.pop("predictions"))
            report = method.gate_report(model)
            if report is not None:  # gate weights at inference on this task (MoLE Figure 7)
                io.write_json(tmp / f"{task}{GATES_SUFFIX}", report)
            io.write_json(tmp / f"{task}.json", {
                "variant": variant_name, "method": variant["method"], "group": group, "task": task,
                "family": spec.family, "seed": seed, **result, "cost": costs, "seconds": round(time.time() - start, 2),
                "run_info": io.provenance({"variant": variant, "eval": eval_cfg, "adapters": adapter_dirs}, seed)})


GATES_SUFFIX = ".gates.json"


def masked_evaluate(config: dict, variant_name: str, group: str, drop: list[str | int], seed: int,
                    out_dir: str) -> None:
    """Score a composition of `group` without the LoRAs in `drop` (MoLE Figure 8), into metric files whose group is
    `drop-{names}`. A method with a `mask` option (MoLE) keeps its trained state and masks them at inference; an
    untrained one (NLA) is composed from the remaining LoRAs. Nothing is retrained."""
    from molebench import plan

    res, variant, cls = config["results_dir"], config["variants"][variant_name], plan.method_of(config, variant_name)
    loras = plan.adapter_dirs(config, variant_name, group, seed)
    if "mask" in cls.config_class.help():
        variant = {**variant, "options": {**variant.get("options", {}), "mask": drop}}
    elif cls.trainable:
        raise ValueError(f"{variant_name}: a trained method without a `mask` option cannot drop LoRAs unretrained")
    else:
        loras = [d for i, d in enumerate(loras) if Path(d).parent.name not in drop and i not in drop]
    tasks = plan.evaluated_tasks(config, variant_name, group)
    evaluate(variant_name, variant, f"drop-{'+'.join(map(str, drop))}", tasks, f"{res}/base", loras,
             f"{res}/methods/{variant_name}/{group}/seed{seed}" if cls.trainable else None,
             [f"{res}/data/{t}" for t in tasks], config["eval"], seed, out_dir)


def masking_table(config: dict, evaluation_dirs: list[str], out_file: str) -> None:
    """The masking table in the tables' layout: one row block per masked LoRA (group `drop-{lora}`)."""
    from molebench import plan, tables

    spec = plan.masking_spec(config)
    groups = {g: config["groups"][config["masking"]["group"]] for g in spec["groups"]}
    df = tables.build_table("masking", spec, tables.load_metrics(metric_files(evaluation_dirs)), _tasks(groups),
                            groups, {v: plan.seeds_of(config, v) for v in spec["variants"]})
    io.write_text(out_file, df.to_csv(index=False))


def metric_files(evaluation_dirs: list[str]) -> list[str]:
    return [str(p) for d in evaluation_dirs for p in sorted(Path(d).glob("*.json"))
            if not p.name.endswith(GATES_SUFFIX)]


def _tasks(groups: dict) -> dict:
    return {t: load_task(t) for tasks in groups.values() for t in tasks}


def _metrics(config: dict, evaluation_dirs: list[str], groups: list[str]):
    """Tidy metric rows; a per-task method's rows (group = the task) are repeated under every table group of the task."""
    import pandas as pd

    from molebench import plan, tables

    metrics = tables.load_metrics(metric_files(evaluation_dirs))
    per_task = metrics.variant.map(lambda v: plan.per_task(config, v))
    parts = [metrics[~per_task]]
    for group in groups:
        rows = metrics[per_task & metrics.task.isin(config["groups"][group])].copy()
        parts.append(rows.assign(group=group))
    return pd.concat(parts, ignore_index=True)


def table(name: str, config: dict, evaluation_dirs: list[str], out_file: str) -> None:
    from molebench import plan, tables

    spec = config["tables"][name]
    seeds = {v: plan.seeds_of(config, v) for v in spec["variants"]}
    df = tables.build_table(name, spec, _metrics(config, evaluation_dirs, spec["groups"]), _tasks(config["groups"]),
                            config["groups"], seeds)
    io.write_text(out_file, df.to_csv(index=False))


def figure(name: str, config: dict, out_png: str, out_csv: str) -> None:
    from molebench import plan
    from molebench.figures import FIGURE_KINDS

    spec = config["figures"][name]
    data, fig = FIGURE_KINDS[spec["kind"]](plan.figure_inputs(config, name))
    fig.suptitle(spec["title"], fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for the title above the panels' own titles
    io.write_text(out_csv, data.to_csv(index=False))
    with io.atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def lora_gain(config: dict, evaluation_dirs: list[str], out_file: str) -> None:
    from molebench import plan, tables

    used = {g: config["groups"][g] for g in plan.used_groups(config)}
    by_method = {config["variants"][v]["method"]: v for v in plan.gain_variants(config)}
    df = tables.lora_gain_table(_metrics(config, evaluation_dirs, list(used)), used, _tasks(used),
                                zero_shot=by_method["zero-shot"], single=by_method["single"])
    io.write_text(out_file, df.to_csv(index=False))


def claims(config: dict, evaluation_dirs: list[str], figure_csvs: dict[str, str], out_ledger: str,
           out_comparisons: str, ramole_csvs: dict[str, str] | None = None, t2i_dirs: list[str] | None = None) -> None:
    """ramole_csvs: RAMoLE table name -> its CSV, t2i_dirs: text-to-image metric folders (plan.claims_inputs), for
    the claims on those tables."""
    import pandas as pd

    from molebench import claims as ledger
    from molebench.t2i.report import load_metrics as t2i_metrics

    claimed = ledger.load_claims()
    groups = list(dict.fromkeys(g for t in ledger.needed(claimed, config)[0] for g in config["tables"][t]["groups"]))
    rows = {g: [(t, m) for t, spec in _tasks({g: config["groups"][g]}).items() for m in spec.metrics] for g in groups}
    verdicts, comparisons = ledger.ledger(claimed, config, _metrics(config, evaluation_dirs, groups), rows,
                                          {name: pd.read_csv(path) for name, path in figure_csvs.items()},
                                          {name: pd.read_csv(path) for name, path in (ramole_csvs or {}).items()},
                                          t2i_metrics(t2i_dirs) if t2i_dirs else None)
    io.write_text(out_comparisons, comparisons.to_csv(index=False))
    io.write_text(out_ledger, verdicts.to_csv(index=False))


def site(config: dict, table_files: dict[str, str], figure_files: dict[str, str], gain_file: str,
         claims_files: tuple[str, str], evaluation_dirs: list[str], benchmark_files: list[str], faults_file: str,
         out_dir: str, extra_tables: dict[str, str] | None = None, t2i_dir: str | None = None) -> None:
    """extra_tables: name -> CSV of tables built outside `tables:` (RAMoLE's), shown as they are; t2i_dir: the
    text-to-image report folder, copied in as t2i/."""
    import pandas as pd

    from molebench import plan
    from molebench import site as render

    specs = {**config["tables"], **({"masking": plan.masking_spec(config)} if "masking" in config else {})}
    tables = {name: (specs[name], pd.read_csv(path).fillna({"paper_task": ""})) for name, path in table_files.items()}
    benchmarks = render.load_benchmarks(benchmark_files) if benchmark_files else None
    files = metric_files(evaluation_dirs)
    figures = {name: (config["figures"][name], Path(png)) for name, png in figure_files.items()}
    render.render_site(out_dir, tables, figures, pd.read_csv(gain_file), tuple(map(pd.read_csv, claims_files)),
                       render.load_provenance(files), benchmarks, config, io.read_json(faults_file)["rows"],
                       render.load_costs(files), plan.job_chains(config),
                       {name: pd.read_csv(path) for name, path in (extra_tables or {}).items()},
                       Path(t2i_dir) if t2i_dir else None)


def faults(kills: int, out_file: str) -> None:
    from molebench.faults import campaign

    rows = campaign(kills=kills)
    io.write_json(out_file, {"rows": rows, "run_info": io.provenance({"kills": kills})})
    failed = [row["fault"] for row in rows if not row["ok"]]
    if failed:
        raise RuntimeError(f"faults not handled as designed: {failed} (see {out_file})")
