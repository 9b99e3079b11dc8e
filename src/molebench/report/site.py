"""Static HTML site: a page per table, the single-LoRA gain check, provenance, a bar chart per table, and the claims
ledger with a forest plot per claim.

Pages use the one shell of molebench.core.html. The site is built in a temporary folder and renamed onto `out_dir` in
one step, so nobody ever reads half a site.
"""

from __future__ import annotations

import math
import shutil
import textwrap
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from molebench.core import io
from molebench.core.html import esc, fmt, link, page
from molebench.core.io import atomic_path, read_json, write_text
from molebench.nlp import plan
from molebench.nlp.figures import FIGURE_KINDS
from molebench.nlp.report import metric_files
from molebench.ramole.report import TABLE_NOTES, TABLE_TITLES
from molebench.report import budget, evidence
from molebench.report.claims import load_claims, settings
from molebench.report.evidence import FAILS, HOLDS, NOT_TESTABLE, UNDECIDED
from molebench.report.pool_gain import pass_share as pool_share

VERDICT_CLASS = {HOLDS: "holds", FAILS: "fails", UNDECIDED: "undecided", NOT_TESTABLE: "untestable"}  # row colours
VERDICT_COLOURS = {HOLDS: "#2e8b57", FAILS: "#c0392b", UNDECIDED: "#8a8a8a", NOT_TESTABLE: "#4a6fb5"}  # forest plots
FOREST_DIR = "claims"  # the site's folder of forest plots, one PNG per claim with comparisons
# Fields of run_info that are not shown: the config is stood for by config_hash, and seed and time vary per run.
SKIPPED_RUN_INFO = {"config", "seed", "time_utc"}


def load_provenance(paths: list[str]) -> dict:
    """Summarise the run_info of metric files.

    Returns {"n_files", "seconds" (summed evaluation time), "first"/"last" (time_utc range),
    "fields": {dotted field: {value: number of files}}}.
    """
    fields: dict[str, dict[str, int]] = {}
    times, seconds = [], 0.0
    for path in paths:
        rec = read_json(path)
        seconds += float(rec.get("seconds") or 0.0)
        info = rec.get("run_info") or {}
        if info.get("time_utc"):
            times.append(info["time_utc"])
        for key, value in _flatten({k: v for k, v in info.items() if k not in SKIPPED_RUN_INFO}):
            counts = fields.setdefault(key, {})
            counts[str(value)] = counts.get(str(value), 0) + 1
    return {"n_files": len(paths), "seconds": seconds, "first": min(times, default=None),
            "last": max(times, default=None), "fields": fields}


COST_COLUMNS = {"trainable_params": "trainable parameters", "extra_params": "extra parameters at inference",
                "extra_flops_per_token": "extra FLOPs per token", "extra_flops_percent": "extra FLOPs, % of base"}


def load_costs(paths: list[str]) -> pd.DataFrame:
    """The `cost` block of metric files (molebench.accounting), one row per file: variant plus COST_COLUMNS."""
    rows = [{"variant": rec["variant"], **{k: rec["cost"][k] for k in COST_COLUMNS}}
            for rec in map(read_json, paths) if "cost" in rec]
    return pd.DataFrame(rows, columns=["variant", *COST_COLUMNS])


def _cost_table(costs: pd.DataFrame, variants: list[str]) -> str:
    """Per variant; a range where the table's groups differ (for example in their number of LoRAs)."""
    rows = []
    for variant in variants:
        mine = costs[costs.variant == variant]
        if mine.empty:
            continue
        cells = [f'<td class="key">{esc(variant)}</td>']
        for col in COST_COLUMNS:
            show = (lambda v: f"{v:,.4g}") if col == "extra_flops_percent" else (lambda v: f"{int(v):,}")
            low, high = mine[col].min(), mine[col].max()
            cells.append(f"<td>{esc(show(low) if high == low else f'{show(low)} – {show(high)}')}</td>")
        rows.append(cells)
    note = ("<p>Cost of each method (molebench.accounting): parameters trained by the composition itself (the "
            "per-task LoRAs are shared by all), parameters held at inference beyond the base model, and matrix "
            "FLOPs per token beyond the base model (merged methods add none; gates paid once per sequence are left "
            "out; the base is taken as 2 FLOPs per parameter).</p>")
    return "<h2>Cost</h2>" + note + _html_table(["variant", *COST_COLUMNS.values()], rows) if rows else ""


def _flatten(obj: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in obj.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def render_site(out_dir: str | Path, tables: dict[str, tuple[dict, pd.DataFrame]],
                figures: dict[str, tuple[dict, Path]], gain: pd.DataFrame, claims: tuple[pd.DataFrame, pd.DataFrame],
                provenance: dict, benchmarks: pd.DataFrame | None, config: dict, faults: list[dict],
                costs: pd.DataFrame, chains: list[list[tuple[str, str]]],
                extra_tables: dict[str, pd.DataFrame] | None = None, t2i_pages: Path | None = None,
                pool_gain: pd.DataFrame | None = None) -> None:
    """Write the site into out_dir (replaced as a whole): index, one page + PNG + CSV per table and per figure
    (figures: name -> (spec, PNG with its CSV beside it)), gain, the claims ledger (molebench.report.claims: verdicts
    and the comparisons behind them, with a forest plot per claim in claims/), provenance. extra_tables (RAMoLE's): name -> table, shown as they are on a page
    each, linked from the index; `t2i_pages` (the text-to-image report folder) is copied in as t2i/; `pool_gain`
    (molebench.report.pool_gain) gets a page and its pass share on the index."""
    extra_tables = extra_tables or {}
    with atomic_path(out_dir) as site:
        site.mkdir()
        ledger, comparisons = claims
        pages = {f"{name}.html" for name in [*tables, *figures, *extra_tables]}
        pages |= {f"t2i/{p.name}" for p in Path(t2i_pages).glob("*.html")} if t2i_pages is not None else set()
        ledger_table = _ledger_table(ledger, pages)
        write_text(site / "index.html", page("molebench", _index(tables, figures, gain, ledger_table, ledger, config,
                                                                  extra_tables, t2i_pages is not None, pool_gain)))
        if pool_gain is not None:
            write_text(site / "pool_gain.csv", pool_gain.to_csv(index=False))
            write_text(site / "pool_gain.html", page("Pool LoRAs: gain over zero-shot", _pool_gain_page(pool_gain)))
        plots = _forest_plots(site, ledger, comparisons, config)
        write_text(site / "claims.html", page("Claims ledger", _claims_page(ledger, ledger_table, comparisons, config,
                                                                            plots, pages)))
        for name, frame in (("claims", ledger), ("claims_comparisons", comparisons)):
            write_text(site / f"{name}.csv", frame.to_csv(index=False))
        for name, table in extra_tables.items():
            write_text(site / f"{name}.csv", table.to_csv(index=False))
            write_text(site / f"{name}.html", page(_extra_title(name), _extra_page(name, table, config)))
        if t2i_pages is not None:
            shutil.copytree(t2i_pages, site / "t2i")
        for name, (spec, png) in figures.items():
            for path in (png, png.with_suffix(".csv")):
                (site / f"{name}{path.suffix}").write_bytes(path.read_bytes())
            write_text(site / f"{name}.html", page(spec["title"], _figure_page(name, spec, config)))
        for name, (spec, table) in tables.items():
            write_text(site / f"{name}.csv", table.to_csv(index=False))
            _bar_chart(spec, table, site / f"{name}.png")
            write_text(site / f"{name}.html", page(spec.get("title", name), _table_page(name, spec, table, gain,
                                                                                          config, costs)))
        write_text(site / "lora_gain.csv", gain.to_csv(index=False))
        write_text(site / "lora_gain.html", page("Single-LoRA gain over zero-shot", _gain_page(gain)))
        write_text(site / "provenance.html", page("Provenance", _provenance_page(provenance, benchmarks, chains,
                                                                                config["budget"])))
        write_text(site / "reliability.html", page("Reliability: fault injection", _faults_page(faults)))


def _html_table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    """Cells are given as HTML (already escaped) so callers can bold or class them."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(f'<tr class="{cls}">{"".join(row)}</tr>'
                   for row, cls in zip(rows, row_classes or [""] * len(rows)))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _setup_line(config: dict) -> str:
    model = config.get("model", {})
    model_text = ", ".join(f"{k}: {v}" for k, v in model.items()) if isinstance(model, dict) else model
    return (f"scale <b>{esc(config.get('scale', '?'))}</b>, model <b>{esc(model_text)}</b>, "
            f"seeds <b>{esc(', '.join(map(str, config.get('seeds', []))))}</b>")


def _index(tables: dict, figures: dict, gain: pd.DataFrame, ledger_table: str, ledger: pd.DataFrame, config: dict,
           extra_tables: dict, t2i: bool = False, pool_gain: pd.DataFrame | None = None) -> str:
    about = ("<p>molebench trains one LoRA per task on a small language model, composes each group's LoRAs with the "
             "methods compared in the MoLE paper (MoLE, normalised linear arithmetic, ...) and scores every "
             "composition on every task of the group. Each table page puts our numbers beside the numbers the paper "
             "published.</p>")
    claims = (f"<h2>The papers' claims at this scale</h2><p>{esc(verdict_counts(ledger))} "
              f"({link('claims.html', 'the rule and the comparisons')}).</p>")
    parts = [about, claims, ledger_table, f"<h2>What was run</h2><p>{_setup_line(config)}</p>"]
    data = config.get("data", {})
    if data:
        parts.append(f"<p>{esc(data.get('n_train', '?'))} training and {esc(data.get('n_test', '?'))} test "
                     f"examples per task (split seed {esc(data.get('split_seed', '?'))}).</p>")
    group_rows = [[f'<td class="key">{esc(g)}</td>', f'<td class="key">{esc(", ".join(ts))}</td>']
                  for g, ts in config.get("groups", {}).items()]
    parts.append(_html_table(["group", "tasks"], group_rows))
    variant_rows = [[f'<td class="key">{esc(v)}</td>', f'<td class="key">{esc(d.get("method", ""))}</td>',
                     f'<td class="key">{esc(d.get("options", {}))}</td>', f'<td class="key">{esc(d.get("train", {}))}</td>']
                    for v, d in config.get("variants", {}).items()]
    parts.append(_html_table(["variant", "method", "options", "train"], variant_rows))
    links = "".join(f"<li>{link(f'{name}.html', spec.get('title', name))}</li>"
                    for name, (spec, _) in [*tables.items(), *figures.items()])
    links += "".join(f"<li>{link(f'{name}.html', _extra_title(name))}</li>" for name in extra_tables)
    n_valid = int(gain["valid"].sum()) if len(gain) else 0
    parts.append(f"<h2>Pages</h2><ul>{links}"
                 f"<li>{link('lora_gain.html', 'Single-LoRA gain over zero-shot')}: "
                 f"{n_valid} of {len(gain)} tasks pass</li>"
                 + (f"<li>{link('pool_gain.html', 'Pool LoRAs: gain over zero-shot')}: "
                    f"{esc(pool_share(pool_gain))}</li>" if pool_gain is not None else "")
                 + f"<li>{link('provenance.html', 'Provenance: code, config, versions, hardware, run times')}</li>"
                 f"<li>{link('reliability.html', 'Reliability: fault injection')}</li>"
                 + (f"<li>{link('t2i/index.html', 'Text-to-image MoLE: Tables 1, 9, 10 and image grids')}</li>"
                    if t2i else "") + "</ul>")
    return "\n".join(parts)


def _ledger_table(ledger: pd.DataFrame, pages: set[str]) -> str:
    """The ledger with each claim's source linked to the page of its evidence, where this site has that page."""
    rows = [[f'<td class="key">{esc(r.paper)}</td>',
             f'<td class="key">{link(r.page, r.source) if r.page in pages else esc(r.source)}</td>',
             f'<td class="key">{esc(r.claim)}</td>', f'<td class="key"><b>{esc(r.verdict)}</b></td>',
             f'<td class="key">{esc(r.evidence)}</td>'] for r in ledger.itertuples()]
    return _html_table(["paper", "source", "claim", "verdict", "evidence"], rows,
                       [VERDICT_CLASS[v] for v in ledger.verdict])


def verdict_counts(ledger: pd.DataFrame) -> str:
    """The ledger at a glance: how many claims have each verdict, e.g. '3 holds, 4 fails, 12 not enough evidence, 0 not
    testable at this scale'."""
    counts = ledger.verdict.value_counts()
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICT_CLASS)


def rule_in_words() -> str:
    """The verdict rule as molebench.report.evidence's docstring states it in plain words (the part after 'The rule,
    in plain words:' and before its list of check kinds), on one line: the site states it once, from there."""
    doc = evidence.__doc__ or ""
    rule = doc.partition("The rule, in plain words:")[2].partition("\nCheck kinds")[0]
    return " ".join((rule or doc).split())


def claim_delta(claim_id: str, rows: pd.DataFrame, checks: dict[str, dict], config: dict) -> float:
    """The smallest effect worth reporting of a claim's comparisons: the `delta` column of claims_comparisons.csv
    where it has one, else the claim's check's own delta or the config's (molebench.report.claims.settings)."""
    if "delta" in rows and rows["delta"].notna().any():
        return float(rows["delta"].dropna().iloc[0])
    return settings(config, checks.get(claim_id)).delta


def _forest_plots(site: Path, ledger: pd.DataFrame, comparisons: pd.DataFrame, config: dict) -> dict[str, str]:
    """One forest plot per claim that has comparisons, under FOREST_DIR; claim id -> the PNG's path in the site."""
    checks = {claim["id"]: claim["check"] for claim in load_claims()}
    plots = {}
    for claim_id, verdict in zip(ledger.id, ledger.verdict):
        rows = comparisons[comparisons.id == claim_id]
        if rows.empty:
            continue  # nothing was compared (not run at this scale): the page says why in words
        plots[claim_id] = f"{FOREST_DIR}/{claim_id}.png"
        (site / FOREST_DIR).mkdir(exist_ok=True)
        forest_plot(f"{claim_id}: {verdict}", rows, claim_delta(claim_id, rows, checks, config),
                    site / plots[claim_id])
    return plots


def forest_plot(title: str, rows: pd.DataFrame, delta: float, path: Path) -> None:
    """A claim's comparisons (claims_comparisons.csv rows), one per line: the estimate as a dot and its interval as a
    bar, coloured by the comparison's verdict, over the zero line and the shaded band (-delta, +delta) of effects too
    small to report; the paper's gap as a hollow diamond where the rows have a `paper_gap` value."""
    labels = [textwrap.fill(str(label), 44) for label in rows.comparison]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig = Figure(figsize=(7.5, 1.9 + 0.3 * lines + 0.15 * len(labels)), layout="constrained")
    ax = fig.add_subplot()
    ax.axvspan(-delta, delta, color="#e4e4e4", zorder=0)
    ax.axvline(0, color="black", linewidth=1, zorder=1)
    # an infinite bound (an interval with too few seeds) would stretch the axis to nothing: it is left undrawn
    values = rows[["estimate", "low", "high"]].astype(float).replace([math.inf, -math.inf], math.nan)
    gaps = rows["paper_gap"] if "paper_gap" in rows else pd.Series(math.nan, index=rows.index)
    ys = list(range(len(rows)))[::-1]  # the first comparison on top, as in the table below the plot
    for y, (_, value), verdict, gap in zip(ys, values.iterrows(), rows.verdict, pd.to_numeric(gaps)):
        colour = VERDICT_COLOURS.get(verdict, "black")
        ax.hlines(y, value.low, value.high, color=colour, linewidth=3, zorder=2)
        ax.plot([value.estimate], [y], "o", color=colour, markersize=7, zorder=3)
        if not math.isnan(gap):
            ax.plot([gap], [y], "D", markerfacecolor="none", markeredgecolor="black", markersize=8, zorder=4)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("difference claimed (estimate and interval)", fontsize=8)
    ax.set_title(title, fontsize=9)
    handles = [Line2D([], [], color=VERDICT_COLOURS[v], marker="o", linewidth=3, label=v)
               for v in VERDICT_COLOURS if v in set(rows.verdict)]
    handles.append(Patch(color="#e4e4e4", label=f"within ±{delta:g}: too small to report"))
    if gaps.notna().any():
        handles.append(Line2D([], [], linestyle="none", marker="D", markerfacecolor="none", markeredgecolor="black",
                              label="the paper's gap"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize=7, frameon=False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _claims_page(ledger: pd.DataFrame, ledger_table: str, comparisons: pd.DataFrame, config: dict,
                 plots: dict[str, str], pages: set[str]) -> str:
    """The counts at a glance, the rule once, the ledger, then per claim its verdict, forest plot and comparisons."""
    intro = (f"<p>{_setup_line(config)}. Each claim of the papers is checked against this run's results, example by "
             f"example and seed by seed.</p><p><b>At a glance:</b> {esc(verdict_counts(ledger))}.</p>"
             f"<h2>The rule</h2><p>{esc(rule_in_words())}</p><p>(From molebench.report.evidence; the check kinds and "
             f"the data each reads: molebench.report.claims.)</p>")
    sections = [_claim_section(r, comparisons[comparisons.id == r.id], plots.get(r.id), pages)
                for r in ledger.itertuples()]
    return (intro + ledger_table + "<h2>Each claim</h2>" + "\n".join(sections)
            + f"<p>{link('claims.csv', 'Ledger as CSV')}, {link('claims_comparisons.csv', 'comparisons as CSV')}</p>")


def _claim_section(claim, rows: pd.DataFrame, plot: str | None, pages: set[str]) -> str:
    """A claim's verdict and evidence in words, its forest plot and the table of its comparisons."""
    source = link(claim.page, claim.source) if claim.page in pages else esc(claim.source)
    head = (f'<h3 id="{esc(claim.id)}">{esc(claim.id)}: <span class="{VERDICT_CLASS.get(claim.verdict, "")}">'
            f"{esc(claim.verdict)}</span></h3><p>{esc(claim.claim)} ({esc(claim.paper)}, {source}). "
            f"{esc(claim.evidence)}</p>")
    if plot is None:
        return head
    image = (f'<p><img src="{esc(quote(plot))}" alt="{esc(claim.id)}: each comparison\'s interval, the zero line '
             f'and the band of effects too small to report"></p>')
    with_gap = "paper_gap" in rows and rows["paper_gap"].notna().any()
    header = ["comparison", "estimate [interval]", *([esc("paper's gap")] if with_gap else []), "test examples", "seeds",
              "verdict", "reason"]
    table_rows = [[f'<td class="key">{esc(r.comparison)}</td>',
                   f"<td>{r.estimate:+.2f} [{r.low:+.2f}, {r.high:+.2f}]</td>",
                   *([f"<td>{'–' if pd.isna(r.paper_gap) else f'{r.paper_gap:+.2f}'}</td>"] if with_gap else []),
                   f"<td>{r.n_examples}</td>", f"<td>{r.n_seeds}</td>", f'<td class="key">{esc(r.verdict)}</td>',
                   f'<td class="key">{esc(r.reason)}</td>'] for r in rows.itertuples()]
    return head + image + _html_table(header, table_rows, [VERDICT_CLASS.get(v, "") for v in rows.verdict])


def _table_page(name: str, spec: dict, table: pd.DataFrame, gain: pd.DataFrame, config: dict,
                costs: pd.DataFrame) -> str:
    variants = list(spec["variants"])
    paper_cols = [c for c in table.columns if c.startswith("paper:")]
    valid = {r.task: r for r in gain.itertuples()}  # a task's single LoRA and zero-shot score are the same in every group
    header = ["group", "task", "paper row", "metric"]
    header += [f"{esc(v)}<br>(n={esc(_n_seeds(table, v))})" for v in variants]
    header += [f"paper<br>{esc(c.removeprefix('paper:'))}" for c in paper_cols]
    rows, classes, flagged = [], [], []
    for row in table.to_dict("records"):
        check = valid.get(row["task"])
        mark = ""
        if row["kind"] == "task" and (check is None or not check.valid):
            mark = " †"
            flagged.append((row["task"], check.reason if check is not None else "not checked"))
        means = [row[f"{v}:mean"] for v in variants]
        best = max((m for m in means if not math.isnan(m)), default=None)
        cells = [f'<td class="key">{esc(row["group"])}</td>', f'<td class="key">{esc(row["task"])}{mark}</td>',
                 f'<td class="key">{esc(row["paper_task"])}</td>', f'<td class="key">{esc(row["metric"])}</td>']
        for v, mean in zip(variants, means):
            text = f"{fmt(mean)} ± {fmt(row[f'{v}:std'])}"
            cells.append(f"<td><b>{text}</b></td>" if mean == best else f"<td>{text}</td>")
        # str() keeps the paper's own precision (27.4 vs 80.32)
        cells += [f'<td class="paper">{"–" if math.isnan(row[c]) else row[c]}</td>' for c in paper_cols]
        rows.append(cells)
        classes.append("average" if row["kind"] == "average" else ("invalid" if mark else ""))
    legend = (f"<p>{_setup_line(config)}. Cells give the mean ± sample standard deviation over seeds (n per "
              "column). The best mean of each row is in bold. Grey columns hold the paper's published numbers.</p>")
    parts = [legend, _stand_in_note(table, paper_cols)]
    if flagged:
        items = "".join(f"<li>{esc(t)}: {esc(r)}</li>" for t, r in dict(flagged).items())
        parts.append(f'<p class="note">† The comparison on these tasks may be noise: their single-task LoRA does not '
                     f"clearly beat the base model zero-shot ({link('lora_gain.html', 'details')}).</p><ul>{items}</ul>")
    parts.append(_html_table(header, rows, classes))
    parts.append(_cost_table(costs, variants))
    parts.append(f'<p><img src="{esc(quote(name))}.png" alt="{esc(spec.get("title", name))}: group averages"></p>'
                 f"<p>{link(f'{name}.csv', 'This table as CSV')}"
                 f" (columns: {{variant}}:mean, {{variant}}:std, {{variant}}:n_seeds, paper:{{method}}).</p>")
    return "\n".join(parts)


def _figure_page(name: str, spec: dict, config: dict) -> str:
    return (f"<p>{_setup_line(config)}. Group <b>{esc(spec['group'])}</b>, variants "
            f"<b>{esc(', '.join(spec['variants']))}</b>, averaged over seeds.</p>"
            f"<p>{esc(' '.join((FIGURE_KINDS[spec['kind']].__doc__ or '').split()))}</p>"
            f'<p><img src="{esc(quote(name))}.png" alt="{esc(spec["title"])}"></p>'
            f"<p>{link(f'{name}.csv', 'The data as CSV')} (one row per seed).</p>")


def _n_seeds(table: pd.DataFrame, variant: str) -> int:
    return int(table[f"{variant}:n_seeds"].max())


def _stand_in_note(table: pd.DataFrame, paper_cols: list[str]) -> str:
    """Say plainly that our tasks and model stand in for the paper's, and which tasks have no paper row at all."""
    note = ("The paper reports Flan-T5 with LoRAs trained on FLAN tasks. Our runs use the model named above, with "
            "tasks that stand in for the paper's, and the 'paper row' column names the row each one stands in for. "
            "Absolute numbers are not expected to agree, so compare how the methods rank. Our average rows average "
            "over our tasks; the paper's average rows average over its own.")
    task_rows = table[table.kind == "task"]
    no_paper = task_rows[task_rows[paper_cols].isna().all(axis=1)] if paper_cols else task_rows
    if len(no_paper):
        pairs = dict.fromkeys(f"{t} ({m})" for t, m in zip(no_paper.task, no_paper.metric))
        note += " The paper has no number for: " + ", ".join(pairs) + "."
    return f'<p class="note">{esc(note)}</p>'


def _bar_chart(spec: dict, table: pd.DataFrame, path: Path) -> None:
    """Group averages per variant, with the std over seeds as error bars."""
    variants = list(spec["variants"])
    avg = table[table.kind == "average"]
    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.add_subplot()
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        xs = [j + (i - (len(variants) - 1) / 2) * width for j in range(len(avg))]
        ax.bar(xs, avg[f"{v}:mean"], width, yerr=avg[f"{v}:std"].fillna(0.0), capsize=2, label=v)
    ax.set_xticks(range(len(avg)), avg.group)
    ax.set_ylabel("group average (0-100)")
    ax.set_title(spec.get("title", ""), fontsize=9)
    ax.legend(fontsize=7, ncols=min(len(variants), 4))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _pool_gain_page(table: pd.DataFrame) -> str:
    intro = ("<p>Every pool LoRA (the LoRAs MoLE Table 6 and RAMoLE compose) scored on its own task's test split, "
             "with and without it, in the job that trained it. It passes when the paired bootstrap interval of its "
             "gain (over the test examples, at the claims ledger's confidence; one seed: the pool is trained once) "
             f"lies above 0. <b>{esc(pool_share(table))}</b>; per family:</p>")
    families = table.groupby("family").passes.agg(["sum", "size"])
    family_rows = [[f'<td class="key">{esc(f)}</td>', f"<td>{int(r['sum'])} of {int(r['size'])}</td>"]
                   for f, r in families.iterrows()]
    rows = [[f'<td class="key">{esc(r.lora)}</td>', f'<td class="key">{esc(r.family)}</td>',
             f'<td class="key">{esc(r.metric)}</td>', f"<td>{r.n}</td>", f"<td>{fmt(r.zero_shot)}</td>",
             f"<td>{fmt(r.lora_score)}</td>", f"<td>{fmt(r.gain)} [{fmt(r.low)}, {fmt(r.high)}]</td>",
             f"<td>{'yes' if r.passes else '<b>no</b>'}</td>"] for r in table.itertuples()]
    return (intro + _html_table(["family", "pass"], family_rows)
            + _html_table(["LoRA", "family", "metric", "n", "zero-shot", "with the LoRA", "gain [interval]",
                           "passes"], rows, ["" if r.passes else "invalid" for r in table.itertuples()])
            + f"<p>{link('pool_gain.csv', 'As CSV')}</p>")


def _gain_page(gain: pd.DataFrame) -> str:
    intro = ("<p>A table compares methods on a task only if that task's single-task LoRA beats the base model "
             "zero-shot by more than twice the sample standard deviation of the LoRA over at least 3 seeds. Where it "
             "does not, the LoRAs being composed have learnt little, and the differences between methods are "
             "noise. Scores are on the task's primary metric (its first).</p>")
    header = ["group", "task", "metric", "zero-shot", "single mean", "single std", "n seeds", "gain", "valid",
              "reason"]
    rows, classes = [], []
    for r in gain.itertuples():
        rows.append([f'<td class="key">{esc(r.group)}</td>', f'<td class="key">{esc(r.task)}</td>',
                     f'<td class="key">{esc(r.metric)}</td>', f"<td>{fmt(r.zero_shot)}</td>",
                     f"<td>{fmt(r.single_mean)}</td>", f"<td>{fmt(r.single_std)}</td>", f"<td>{r.n_seeds}</td>",
                     f"<td>{fmt(r.gain)}</td>", f"<td>{'yes' if r.valid else '<b>no</b>'}</td>",
                     f'<td class="key">{esc(r.reason)}</td>'])
        classes.append("" if r.valid else "invalid")
    return intro + _html_table(header, rows, classes) + f"<p>{link('lora_gain.csv', 'As CSV')}</p>"


def _faults_page(faults: list[dict]) -> str:
    intro = ("<p>Each fault was injected by the DAG's <code>faults</code> rule (<code>molebench faults</code>) and "
             "the observed behaviour compared with the designed one.</p>")
    rows = [[f'<td class="key">{esc(r["fault"])}</td>', f"<td>{r['tries']}</td>",
             f'<td class="key">{esc(r["expected"])}</td>', f'<td class="key">{esc(r["observed"])}</td>',
             f"<td>{'yes' if r['ok'] else '<b>no</b>'}</td>"] for r in faults]
    return intro + _html_table(["fault", "tries", "expected", "observed", "as designed"], rows,
                               ["" if r["ok"] else "invalid" for r in faults])


def _provenance_page(provenance: dict, benchmarks: pd.DataFrame | None, chains: list, run_budget: dict) -> str:
    fields = provenance.get("fields", {})
    when = (f", written between {esc(provenance['first'])} and {esc(provenance['last'])}"
            if provenance.get("first") else "")
    summary = (f"<p>Summary of run_info from {esc(provenance.get('n_files', 0))} metric files{when}, with "
               f"{fmt(provenance.get('seconds', 0.0) / 60)} minutes of evaluation in total. A field with more than "
               "one value means the results come from different code, configs or machines.</p>")
    parts = [summary]
    order = ["git_commit", "git_dirty", "config_hash", "python"]
    keys = [k for k in order if k in fields] + sorted(k for k in fields if k not in order)
    rows, classes = [], []
    for key in keys:
        values = fields[key]
        text = "<br>".join(f"{esc(v)} ({n} files)" if len(values) > 1 else esc(v) for v, n in values.items())
        rows.append([f'<td class="key">{esc(key)}</td>', f'<td class="key">{text}</td>'])
        classes.append("invalid" if len(values) > 1 else "")
    parts.append(_html_table(["field", "value"], rows, classes))
    if benchmarks is not None and len(benchmarks):
        per_rule = benchmarks.groupby("rule", sort=True).agg(jobs=("s", "size"), total_s=("s", "sum"),
                                                               max_s=("s", "max"), max_rss=("max_rss", "max"))
        rule_rows = [[f'<td class="key">{esc(rule)}</td>', f"<td>{r.jobs}</td>", f"<td>{fmt(r.total_s)}</td>",
                      f"<td>{fmt(r.max_s)}</td>", f"<td>{fmt(r.max_rss)}</td>"] for rule, r in per_rule.iterrows()]
        job_rows = [[f'<td class="key">{esc(r.rule)}</td>', f'<td class="key">{esc(r.job)}</td>',
                     f"<td>{fmt(r.s)}</td>", f"<td>{fmt(r.max_rss)}</td>"] for r in benchmarks.itertuples()]
        parts.append("<h2>Wall time and memory per rule</h2><p>From Snakemake benchmark files; max RSS in MB.</p>"
                     + _html_table(["rule", "jobs", "total s", "max s", "max RSS"], rule_rows)
                     + "<details><summary>Per job</summary>"
                     + _html_table(["rule", "job", "s", "max RSS"], job_rows) + "</details>")
        if chains:
            est = budget.estimate(benchmarks, chains, run_budget["cores"])
            steps = [[f'<td class="key">{esc(rule)}</td>', f'<td class="key">{esc(job)}</td>', f"<td>{fmt(s)}</td>"]
                     for rule, job, s in est["critical_path"]]
            fits = est["least_wall_minutes"] <= run_budget["wall_minutes"]
            parts.append(f"<h2>Time budget</h2><p>All jobs together took {fmt(est['cpu_minutes'])} CPU-minutes and "
                         f"{fmt(est['job_wall_minutes'])} minutes of job wall time. The critical path (the longest "
                         f"chain of jobs that must run one after another) took {fmt(est['critical_minutes'])} minutes: "
                         f"no number of cores makes the DAG faster than that. On the budget's {run_budget['cores']} "
                         f"cores the run needs at least {fmt(est['least_wall_minutes'])} minutes; the budget is "
                         f"{run_budget['wall_minutes']} minutes: <b>{'within budget' if fits else 'over budget'}</b> "
                         "(`molebench bench --pipeline` prints the same). Its steps (– : no benchmark file, counted "
                         "as 0):</p>" + _html_table(["rule", "job", "s"], steps))
    return "\n".join(parts)


# ---- RAMoLE (issue 6) ------------------------------------------------------------------------------------------

def _extra_title(name: str) -> str:
    return TABLE_TITLES.get(name, name)


def _extra_page(name: str, table: pd.DataFrame, config: dict) -> str:
    """A table as it is: text columns left, numbers to one decimal; rows of kind 'average' set apart."""
    header = [esc(c) for c in table.columns]
    rows, classes = [], []
    for row in table.to_dict("records"):
        cells = [f"<td>{fmt(v)}</td>" if isinstance(v, float) else f'<td class="key">{esc(v)}</td>'
                 for v in row.values()]
        rows.append(cells)
        classes.append("average" if str(row.get("kind", "")).endswith("average") else "")
    return (f"<p>{_setup_line(config)}.</p><p>{esc(TABLE_NOTES.get(name, ''))}</p>"
            f"{_html_table(header, rows, classes)}<p>{link(f'{name}.csv', 'This table as CSV')}.</p>")


# ---- the site rule -----------------------------------------------------------------------------------------------

def build_site(config: dict, table_files: dict[str, str], figure_files: dict[str, str], gain_file: str,
               claims_files: tuple[str, str], evaluation_dirs: list[str], benchmark_files: list[str],
               faults_file: str, out_dir: str, extra_tables: dict[str, str], t2i_dir: str | None,
               pool_gain_file: str | None = None) -> None:
    """The site from the site rule's declared inputs. extra_tables: name -> CSV of tables built outside `tables:`
    (RAMoLE's), shown as they are; t2i_dir: the text-to-image report folder, copied in as t2i/."""
    specs = {**config["tables"], **({"masking": plan.masking_spec(config)} if "masking" in config else {})}
    tables = {name: (specs[name], pd.read_csv(path).fillna({"paper_task": ""})) for name, path in table_files.items()}
    benchmarks = budget.load_benchmarks(benchmark_files) if benchmark_files else None
    files = metric_files(evaluation_dirs)
    figures = {name: (config["figures"][name], Path(png)) for name, png in figure_files.items()}
    render_site(out_dir, tables, figures, pd.read_csv(gain_file), tuple(map(pd.read_csv, claims_files)),
                load_provenance(files), benchmarks, config, io.read_json(faults_file)["rows"], load_costs(files),
                budget.job_chains(config), {name: pd.read_csv(path) for name, path in extra_tables.items()},
                Path(t2i_dir) if t2i_dir else None, pd.read_csv(pool_gain_file) if pool_gain_file else None)
