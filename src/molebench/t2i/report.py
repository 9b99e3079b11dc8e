"""Text-to-image tables (MoLE Tables 1, 9, 10), image grids (Figures 9-11) and the masking grid (Figures 6, 8), and
their pages, copied into the site under t2i/.

A table is declared in the config (`t2i.tables.<name>`: kind, columns {label: variant}, sizes). Every value is the
mean over seeds of a metric of the scoring jobs' metrics.json; image alignment and presence are per concept, in the
composition's subject order (Concept 1, 2, 3 as in the paper).

    kind per_composition   Table 1: a row per composition (of the table's sizes), text alignment, image alignment
                           and presence per concept per method, then an Average row and the paper's Average row
    kind per_variant       Table 9: a row per variant (m/l/b/n-MoLE), the same metrics averaged over compositions
    kind per_size          Table 10: a row per number of concepts, text alignment and mean image alignment/presence
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from molebench.core.html import esc, page
from molebench.core.io import atomic_path, read_json, write_text
from molebench.t2i import plan
from molebench.t2i.preconditions import unmet

SITE_ROOT = "../"  # these pages are copied into the site as t2i/
PAPER_METHODS = {"nla": "NLA", "svdiff": "SVDiff", "mole": "MoLE", "m-mole": "m-MoLE", "l-mole": "l-MoLE",
                 "b-mole": "b-MoLE", "n-mole": "n-MoLE"}


def load_metrics(dirs: list[str]) -> pd.DataFrame:
    """One row per (variant, composition, seed, concept)."""
    rows = []
    for folder in dirs:
        rec = read_json(Path(folder) / "metrics.json")
        for k, subject in enumerate(rec["subjects"]):
            rows.append({"variant": rec["variant"], "composition": rec["composition"], "size": rec["size"],
                         "seed": rec["seed"], "concept": k + 1, "subject": subject,
                         "text_alignment": rec["text_alignment"],
                         "image_alignment": rec["image_alignment"][subject],
                         "presence": rec["presence"].get(subject, np.nan)})
    return pd.DataFrame(rows)


def _mean(df: pd.DataFrame, column: str) -> float:
    """Mean over seeds of the per-seed mean (so every seed weighs the same)."""
    return df.groupby("seed")[column].mean().mean() if len(df) else np.nan


def per_composition(spec: dict, data: pd.DataFrame, paper: pd.DataFrame | None) -> pd.DataFrame:
    rows = []
    compositions = list(dict.fromkeys(data[data["size"].isin(spec["sizes"])]["composition"]))
    concepts = max(spec["sizes"])
    for comp in [*compositions, "Average"]:
        row = {"composition": comp}
        sel = data[data["size"].isin(spec["sizes"])] if comp == "Average" else data[data.composition == comp]
        for label, variant in spec["columns"].items():
            mine = sel[sel.variant == variant]
            row[f"Text-alignment | {label}"] = _mean(mine, "text_alignment")
            for k in range(1, concepts + 1):
                row[f"Image-alignment (Concept {k}) | {label}"] = _mean(mine[mine.concept == k], "image_alignment")
                row[f"Presence (Concept {k}) | {label}"] = _mean(mine[mine.concept == k], "presence")
        rows.append(row)
    if paper is not None:
        row = {"composition": "paper: Average"}
        for label in spec["columns"]:
            for metric in ["Text-alignment", *[f"Image-alignment (Concept {k})" for k in range(1, concepts + 1)]]:
                row[f"{metric} | {label}"] = _paper(paper, "Average", metric, label)
        rows.append(row)
    return pd.DataFrame(rows)


def per_variant(spec: dict, data: pd.DataFrame, paper: pd.DataFrame | None) -> pd.DataFrame:
    rows = []
    concepts = max(spec["sizes"])
    sel = data[data["size"].isin(spec["sizes"])]
    for label, variant in spec["columns"].items():
        mine = sel[sel.variant == variant]
        row = {"method": label, "Text-alignment": _mean(mine, "text_alignment")}
        for k in range(1, concepts + 1):
            row[f"Image-alignment (Concept {k})"] = _mean(mine[mine.concept == k], "image_alignment")
        row["Presence (mean)"] = _mean(mine, "presence")
        if paper is not None:
            row["paper: Text-alignment"] = _paper(paper, label, "Text-alignment", label)
            for k in range(1, concepts + 1):
                metric = f"Image-alignment (Concept {k})"
                row[f"paper: {metric}"] = _paper(paper, label, metric, label)
        rows.append(row)
    return pd.DataFrame(rows)


def per_size(spec: dict, data: pd.DataFrame, paper: pd.DataFrame | None) -> pd.DataFrame:
    rows = []
    for size in [*spec["sizes"], "Average"]:
        sel = data[data["size"].isin(spec["sizes"])] if size == "Average" else data[data["size"] == size]
        row = {"concepts": size}
        for label, variant in spec["columns"].items():
            mine = sel[sel.variant == variant]
            row[f"Text-alignment | {label}"] = _mean(mine, "text_alignment")
            row[f"Average Image-alignment | {label}"] = _mean(mine, "image_alignment")
            row[f"Average Presence | {label}"] = _mean(mine, "presence")
            if paper is not None:
                for metric in ("Text-alignment", "Average Image-alignment"):
                    row[f"paper: {metric} | {label}"] = _paper(paper, str(size), metric, label)
        rows.append(row)
    return pd.DataFrame(rows)


TABLE_KINDS = {"per_composition": per_composition, "per_variant": per_variant, "per_size": per_size}


def _paper(paper: pd.DataFrame, row: str, metric: str, method: str) -> float:
    hit = paper[(paper.paper_task == row) & (paper.metric == metric) & (paper.method.str.lower() == method.lower())]
    return float(hit.value.iloc[0]) if len(hit) else np.nan


def build_table(spec: dict, data: pd.DataFrame) -> pd.DataFrame:
    paper = pd.read_csv(spec["paper"]) if spec.get("paper") else None
    return TABLE_KINDS[spec["kind"]](spec, data, paper)


def image_grid(rows: list[tuple[str, np.ndarray]], title: str, out_png: str | Path) -> None:
    """rows: (label, uint8 images (n, H, W, 3)); one row of images per label."""
    from matplotlib.figure import Figure  # heavy: only the jobs that draw a grid import it, not every t2i job

    ncols = max(len(images) for _, images in rows)
    fig = Figure(figsize=(1.3 * ncols + 1.6, 1.3 * len(rows) + 0.5))
    axes = np.array(fig.subplots(len(rows), ncols, squeeze=False))
    for r, (label, images) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], interpolation="nearest")
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=80)


def composition_grid(comp: dict, columns: dict[str, str], dirs: dict[str, str], n: int, out_png: str | Path) -> None:
    """Figures 9-11: for one composition, the first prompt's first n images of each method (first seed)."""
    from PIL import Image

    rows = []
    for label, variant in columns.items():
        images = [np.asarray(Image.open(Path(dirs[variant]) / "images" / f"p0_{j}.png")) for j in range(n)]
        rows.append((label, np.stack(images)))
    image_grid(rows, f"'{comp['prompts'][0]}'", out_png)


def _html_table(table: pd.DataFrame) -> str:
    return table.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="–", escape=True, border=0)


CAPTIONS = {
    "per_composition": "Per composition: CLIP text alignment (image vs prompt), image alignment per concept (image vs "
                       "the subject's reference images) and presence per concept (share of images in which the "
                       "world's classifier finds the subject). The paper's Average row is printed under ours.",
    "per_variant": "Gate granularity (matrix, layer, block, network), averaged over compositions.",
    "per_size": "Number of composed LoRAs: text alignment, mean image alignment and presence over concepts.",
}


def _preconditions_html(checks: pd.DataFrame | None) -> str:
    if checks is None:
        return "<p>Preconditions: not checked (no presence oracle outside the generated world).</p>"
    why = unmet(checks)
    verdict = ("every precondition is met: the tables below are evidence about the composition methods" if why is None
               else f"not testable at this scale: {why}")
    return (f"<h2>Preconditions</h2><p>Before any composition is scored: does the base model draw what its prompt "
            f"names, and does each subject LoRA alone draw its subject (the world's presence classifier decides)? "
            f"<b>{esc(verdict)}</b>.</p>{_html_table(checks)}<p><a href='preconditions.csv'>CSV</a></p>")


def render(t2i: dict, scale: str, tables: dict[str, pd.DataFrame], grids: dict[str, str], masking: tuple[str, str],
           checks: pd.DataFrame | None, out_dir: str | Path) -> None:
    """The t2i pages: index (with the preconditions), one page per table (+ CSV), the grids and the masking grid."""
    with atomic_path(out_dir) as site:
        site.mkdir()
        links, grid_html = [], []
        for name, table in tables.items():
            spec = t2i["tables"][name]
            write_text(site / f"{name}.csv", table.to_csv(index=False))
            body = (f"<p>{esc(CAPTIONS[spec['kind']])}</p>"
                    f"{_html_table(table)}<p><a href='{esc(name)}.csv'>CSV</a> · <a href='index.html'>back</a></p>")
            write_text(site / f"{name}.html", page(spec["title"], body, root=SITE_ROOT))
            links.append(f"<li><a href='{esc(name)}.html'>{esc(spec['title'])}</a></li>")
        for name, png in grids.items():
            (site / f"{name}.png").write_bytes(Path(png).read_bytes())
            grid_html.append(f"<h3>{esc(name)}</h3><img src='{esc(name)}.png' alt='{esc(name)}'>")
        png, csv = masking
        (site / "masking.png").write_bytes(Path(png).read_bytes())
        (site / "masking.csv").write_bytes(Path(csv).read_bytes())
        masking_table = _html_table(pd.read_csv(csv))
        if checks is not None:
            write_text(site / "preconditions.csv", checks.to_csv(index=False))
        body = (f"<p>Source: {esc(t2i['source'])}. Numbers are CLIP cosines of a CLIP trained on the generated world "
                f"(mini/smoke) or a local CLIP (paper); they are not comparable to the paper's ViT CLIP values.</p>"
                f"{_preconditions_html(checks)}<ul>{''.join(links)}</ul><h2>Images per composition and method (Figures 9-11)</h2>"
                f"{''.join(grid_html)}<h2>Masking: each subject's LoRA dropped from the trained gates (Figures 6, 8)"
                f"</h2><img src='masking.png' alt='masking grid'>{masking_table}"
                f"<p><a href='masking.csv'>CSV</a></p>")
        write_text(site / "index.html", page(f"Text-to-image MoLE ({scale})", body, root=SITE_ROOT))


def report_stage(t2i: dict, scale: str, evaluation_dirs: list[str], masking_png: str, masking_csv: str,
                 preconditions_csv: str | None, out_dir: str) -> None:
    """Tables 1, 9, 10 as CSV and HTML, a grid per composition of the first table (first seed), the masking grid,
    the preconditions (world). evaluation_dirs: the evaluate folders, `.../{variant}/{composition}/seed{seed}`
    (plan.evaluations)."""
    data = load_metrics(evaluation_dirs)
    by_run = {tuple(Path(d).parts[-3:]): d for d in evaluation_dirs}
    tables = {name: build_table(spec, data) for name, spec in t2i["tables"].items()}
    first_table, first_seed = next(iter(t2i["tables"])), t2i["seeds"][0]
    columns = t2i["tables"][first_table]["columns"]
    with tempfile.TemporaryDirectory() as tmp:
        grids = {}
        for comp in plan.table_compositions(t2i, first_table):
            dirs = {v: by_run[(v, comp["name"], f"seed{first_seed}")] for v in columns.values()}
            grids[comp["name"]] = Path(tmp) / f"{comp['name']}.png"
            composition_grid(comp, columns, dirs, t2i["grid_images"], grids[comp["name"]])
        render(t2i, scale, tables, grids, (masking_png, masking_csv),
               pd.read_csv(preconditions_csv) if preconditions_csv else None, out_dir)
