"""The papers' figures from the DAG's own outputs, as data (CSV) and a matplotlib PNG.

A figure is declared in the config (`figures:`) with a `kind`, a `group` and `variants`:

    gate_entropy   MoLE Figure 5: (a) mean gate entropy per training step, (b) mean gate weight per LoRA over training;
                   read from the compose jobs' train_log.jsonl (MoLE logs both every step)
    gate_heatmap   MoLE Figure 7: mean gate weight per gate (x) and LoRA (y) on each task at inference; read from the
                   scoring jobs' {task}.gates.json
    expert_utilisation
                   MixLoRA: each expert's share of the routed tokens per FFN layer and task at inference; read from
                   the scoring jobs' {task}.gates.json (MixLoRA's gate report)
    mixlora_efficiency
                   MixLoRA's plain and optimised execution paths, timed in the figure job at the base model's FFN
                   shapes with the variant's options (molebench.nlp.mixlora_timing); the efficiency table as a figure
Each function takes {variant: [folders, one per seed]}; its docstring is the figure's caption on the site. Every value
is averaged over the seeds found; the CSV keeps the seeds apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from molebench.core.io import read_json, read_jsonl
from molebench.core.registry import Registry

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_KINDS = Registry("figure kind")
FROM_TRAINING = {"gate_entropy", "mixlora_efficiency"}  # kinds that read compose outputs; the rest read evaluate's


def _figure(width: float, height: float) -> Figure:
    # matplotlib (about 0.7 s to import) only where a figure is drawn: Snakemake's own process and every table and
    # ledger job import this module's registry through molebench.nlp.plan
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _seed(path: Path) -> int:
    return int(path.name.removeprefix("seed"))


@FIGURE_KINDS.register("gate_entropy")
def gate_entropy(dirs: dict[str, list[str]]) -> tuple[pd.DataFrame, Figure]:
    """(a) Mean entropy of the gate weights at each training step (over the step's gates and samples; ln N is uniform
    weights, 0 is one LoRA), (b) mean gate weight of each LoRA over training. From the compose jobs' training logs."""
    rows = []
    for variant, folders in dirs.items():
        for folder in map(Path, folders):
            for rec in read_jsonl(folder / "train_log.jsonl"):
                if "gate_entropy" not in rec:
                    raise ValueError(f"{folder}/train_log.jsonl has no gate_entropy: not a MoLE training log")
                rows += [{"variant": variant, "seed": _seed(folder), "step": rec["step"], "lora": i,
                          "gate_entropy": rec["gate_entropy"], "weight": w}
                         for i, w in enumerate(rec["gate_mean_weights"])]
    data = pd.DataFrame(rows)
    fig = _figure(10, 3.6)
    ax_entropy, ax_weights = fig.subplots(1, 2)
    per_step = data[data.lora == 0].groupby(["variant", "step"], sort=False).gate_entropy.mean()
    weights = data.groupby(["variant", "lora"], sort=False).weight.mean().unstack("variant")
    for variant in dirs:
        curve = per_step[variant]
        ax_entropy.plot(curve.index, curve.values, label=variant)
    ax_entropy.set(xlabel="training step", ylabel="mean gate entropy (nats)", title="(a) gate entropy")
    ax_entropy.legend()
    weights.plot.bar(ax=ax_weights, rot=0)
    ax_weights.set(xlabel="LoRA", ylabel="mean gate weight over training", title="(b) weight per LoRA")
    fig.tight_layout()
    return data, fig


@FIGURE_KINDS.register("gate_heatmap")
def gate_heatmap(dirs: dict[str, list[str]]) -> tuple[pd.DataFrame, Figure]:
    """Mean gate weight of each LoRA (rows) at each gate (columns, in model order) over the test prompts of each task,
    at inference. From the scoring jobs' gate reports."""
    rows = []
    for variant, folders in dirs.items():
        for folder in map(Path, folders):
            for path in sorted(folder.glob("*.gates.json")):
                report = read_json(path)
                task = path.name.removesuffix(".gates.json")
                rows += [{"variant": variant, "task": task, "seed": _seed(folder), "gate": gate, "lora": lora,
                          "weight": w}
                         for gate in report["order"]
                         for lora, w in zip(report["experts"], report["gates"][gate]["mean_weights"])]
    data = pd.DataFrame(rows)
    if data.empty:
        raise ValueError(f"no .gates.json in {dirs}: the variants must be MoLE variants that were scored")
    panels = list(data.groupby(["variant", "task"], sort=False))
    fig = _figure(10, 2.4 * len(panels))
    for ax, ((variant, task), part) in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels):
        grid = part.groupby(["lora", "gate"]).weight.mean().unstack("gate")
        grid = grid.loc[part.lora.unique(), part.gate.unique()]  # LoRAs and gates in report (model) order
        image = ax.imshow(grid.values, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(grid.index)), grid.index)
        ax.set_xlabel(f"gate ({len(grid.columns)}, in model order)")
        ax.set_title(f"{variant} on {task}: mean gate weight")
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return data, fig


@FIGURE_KINDS.register("expert_utilisation")
def expert_utilisation(dirs: dict[str, list[str]]) -> tuple[pd.DataFrame, Figure]:
    """MixLoRA expert utilisation: the share of routed (token, slot) assignments each expert (rows) receives at each
    FFN layer (columns, in model order) over a task's test inputs at inference; 1 / (number of experts) everywhere is
    a perfect balance, which the load-balance loss pushes towards. Panel titles give the largest share. From the
    scoring jobs' utilisation reports."""
    rows = []
    for variant, folders in dirs.items():
        for folder in map(Path, folders):
            for path in sorted(folder.glob("*.gates.json")):
                report = read_json(path)
                if report.get("kind") != "expert_utilisation":
                    raise ValueError(f"{path} is not a MixLoRA expert utilisation report")
                rows += [{"variant": variant, "task": path.name.removesuffix(".gates.json"), "seed": _seed(folder),
                          "layer": i, "module": name, "expert": e, "share": share}
                         for i, name in enumerate(report["order"])
                         for e, share in enumerate(report["layers"][name]["share"])]
    data = pd.DataFrame(rows)
    if data.empty:
        raise ValueError(f"no .gates.json in {dirs}: the variants must be MixLoRA variants that were scored")
    panels = list(data.groupby(["variant", "task"], sort=False))
    fig = _figure(10, 2.4 * len(panels))
    for ax, ((variant, task), part) in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels):
        grid = part.groupby(["expert", "layer"]).share.mean().unstack("layer")
        image = ax.imshow(grid.values, aspect="auto", cmap="viridis", vmin=0)
        ax.set(xlabel=f"FFN layer ({grid.shape[1]})", ylabel="expert")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_title(f"{variant} on {task}: share of routed tokens (uniform {1 / grid.shape[0]:.3f}, "
                     f"largest {grid.values.max():.3f})")
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return data, fig


@FIGURE_KINDS.register("mixlora_efficiency")
def mixlora_efficiency(dirs: dict[str, list[str]]) -> tuple[pd.DataFrame, Figure]:
    """MixLoRA's execution paths, measured in this job on this machine: per-token latency and peak memory of one
    MixLoRA FFN block (random weights, the base model's FFN shapes, the variant's experts, top-k and rank, batch 8 x
    128 tokens) run plainly (the whole FFN per expert) or optimised (W1 x and W3 x once for all tokens), for
    inference and for a training step. Only the FFN block is timed; `molebench bench --mixlora` also measures
    Llama-2-7B shapes (docs/performance.md). The CSV has one row per timed repeat (3 per path and mode), so that the
    claims ledger can put an interval on each change; the bars show the mean over repeats."""
    # torch and transformers' Llama modules, imported by this figure's job only: the plan (and so the Snakefile) and
    # every other table and figure job import this module, and would pay about 3 s each for them
    from molebench.nlp import mixlora_timing

    rows = []
    for variant, folders in dirs.items():
        folder = Path(folders[0])  # the measurement does not depend on the seed
        options = read_json(folder / "method.json")["config"]
        base = read_json(folder.parents[3] / "base" / "config.json")
        d = base.get("hidden_size", base.get("d_model"))
        ffn = base.get("intermediate_size", base.get("d_ff"))
        shapes = {f"{base['model_type']} d {d}, FFN {ffn}": (d, ffn, 8, 128)}
        for row in mixlora_timing.run(repeats=3, shapes=shapes, options=options):
            keys = {k: v for k, v in row.items() if not k.endswith(("_repeats", "_vs_plain"))}
            rows += [{"variant": variant, **keys, "repeat": i + 1, "us_per_token": us, "peak_mb": mb}
                     for i, (us, mb) in enumerate(zip(row["us_per_token_repeats"], row["peak_mb_repeats"]))]
    data = pd.DataFrame(rows)
    fig = _figure(10, 3.6)
    for ax, (column, label) in zip(fig.subplots(1, 2), (("us_per_token", "microseconds per token"),
                                                       ("peak_mb", "peak memory (MB)"))):
        table = data.pivot_table(index=["variant", "mode"], columns="path", values=column, sort=False)
        table[["plain", "optimised"]].plot.bar(ax=ax, rot=0)
        ax.set(ylabel=label, xlabel="", title=label)
    fig.tight_layout()
    return data, fig
