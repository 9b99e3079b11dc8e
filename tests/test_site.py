"""site.py: the static site is complete, linked, escaped, and replaced as a whole."""

import json
import logging
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from browser import CHROMIUM, MISSING, check_pages
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_logger_plugin_molebench import LogHandler
from test_tables import GROUPS, SEEDS, SPEC, TASKS, VARIANT_SEEDS, write_metrics, write_paper

from molebench import scheduling
from molebench.cli import main
from molebench.nlp.report import build_table, load_metrics, lora_gain_table
from molebench.report import budget
from molebench.report.budget import critical_path, load_benchmarks
from molebench.report.claims import ledger
from molebench.report.evidence import Settings
from molebench.report.pool_gain import pass_share as pool_share
from molebench.report.pool_gain import pool_gain_table
from molebench.report.site import claim_delta, load_costs, load_provenance, render_site

CONFIG = {"scale": "mini", "model": {"source": "smollm2-gguf"}, "seeds": SEEDS, "groups": GROUPS,
          "data": {"n_train": 400, "n_test": 50, "split_seed": 0}, "budget": {"cores": 2, "wall_minutes": 90},
          "variants": {"zero-shot": {"method": "zero-shot"}, "single": {"method": "single"},
                       "mole": {"method": "mole", "train": {"steps": 40}}}}


CLAIM = {"id": "mole-wins", "paper": "MoLE", "source": "Table 3", "claim": "MoLE <beats> single",
         "check": {"kind": "above", "table": "table3", "variant": "mole", "others": ["single"]}}
CHAINS = [[("base_model", "base"), ("train", "t_a/seed1")]]  # base_model has no benchmark file here
# a claim on a table this run does not have: not enough evidence, and no comparison to plot
NOT_RUN = {"id": "pems-wins", "paper": "MoLE", "source": "Table 9", "claim": "PEMs beats single",
           "check": {"kind": "above", "table": "table9", "variant": "pems", "others": ["single"]}}


def per_example():
    """Per-example scores (molebench.report.claims.nlp_scores) on g1's tasks: mole 5 above single, 20 above zero-shot."""
    return pd.DataFrame([{"variant": v, "group": "g1", "seed": seed, "task": t, "example": str(i),
                          "value": 40 + shift + i % 7 + 0.1 * seed * (i % 3)}
                         for v, shift in (("mole", 5), ("single", 0), ("zero-shot", -15)) for t in GROUPS["g1"]
                         for seed in (SEEDS[:1] if v == "zero-shot" else SEEDS) for i in range(20)])


def make_site(tmp_path, title="Table <A> & co", benchmarks=None, figures=None, t2i_pages=None, claims=(CLAIM,),
              paper_gap=None):
    paths = write_metrics(tmp_path, variants=("single", "mole", "zero-shot"))
    metrics = load_metrics(paths)
    spec_a = {**SPEC, "title": title, "paper": write_paper(tmp_path / "paper.csv")}
    spec_b = {**SPEC, "title": "Second table", "variants": ["mole"]}
    tables = {"table3": (spec_a, build_table("table3", spec_a, metrics, TASKS, GROUPS, VARIANT_SEEDS)),
              "table7": (spec_b, build_table("table7", spec_b, metrics, TASKS, GROUPS, VARIANT_SEEDS))}
    out = tmp_path / "site"
    faults = [{"fault": "kill <b>", "tries": 2, "expected": "resume", "observed": "2/2", "ok": True}]
    claims = ledger(list(claims), {**CONFIG, "tables": {"table3": spec_a}}, per_example())
    if paper_gap is not None:  # the paper's gap per comparison, as the ledger writes it where the paper has numbers
        claims = (claims[0], claims[1].assign(paper_gap=paper_gap))
    render_site(out, tables, figures or {}, lora_gain_table(metrics, GROUPS, TASKS, "zero-shot", "single"), claims, load_provenance(paths),
                benchmarks, CONFIG, faults, load_costs(paths), CHAINS, t2i_pages=t2i_pages)
    return out


def test_site_writes_index_linking_every_page(tmp_path):
    out = make_site(tmp_path)
    index = (out / "index.html").read_text()
    links = set(re.findall(r'href="([^"]+)"', index))
    assert {"table3.html", "table7.html", "claims.html", "lora_gain.html", "provenance.html"} <= links
    for link in links:
        assert (out / link).is_file(), link
    for name in ("table3", "table7"):
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert (out / f"{name}.csv").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".site.")]  # no temp folder left behind


def test_index_shows_the_claims_ledger_and_its_page_the_comparisons(tmp_path):
    out = make_site(tmp_path)
    index = (out / "index.html").read_text()
    assert "1 holds, 0 fails, 0 not enough evidence, 0 not testable at this scale" in index
    assert '<tr class="holds">' in index and "MoLE &lt;beats&gt; single" in index
    assert '<a href="table3.html">Table 3</a>' in index  # the claim's source links to its evidence
    page = (out / "claims.html").read_text()
    assert "g1: mole &gt; single" in page and "+5.00 [+" in page and "above 0" in page
    assert "A comparison HOLDS when its 95% interval lies above 0" in page  # the rule, from evidence.py


def test_claims_page_has_a_forest_plot_per_claim_the_counts_and_the_rule_once(tmp_path):
    out = make_site(tmp_path, claims=(CLAIM, NOT_RUN))
    page = (out / "claims.html").read_text()
    assert "1 holds, 0 fails, 1 not enough evidence, 0 not testable at this scale" in page
    assert "1 holds, 0 fails, 1 not enough evidence, 0 not testable at this scale" in (out / "index.html").read_text()
    assert page.count("A comparison HOLDS when") == 1  # the rule, stated once
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images == ["claims/mole-wins.png"]  # the claim not run has nothing to plot
    assert (out / images[0]).read_bytes().startswith(b"\x89PNG")
    section = page[page.index('<h3 id="pems-wins">'):]
    assert "not enough evidence" in section and "not run at this scale: table9" in section


def test_forest_plot_shows_the_papers_gap_where_the_ledger_has_it(tmp_path):
    page = (make_site(tmp_path, paper_gap=4.5) / "claims.html").read_text()
    assert "paper&#x27;s gap</th>" in page and "<td>+4.50</td>" in page
    assert (tmp_path / "site" / "claims" / "mole-wins.png").read_bytes().startswith(b"\x89PNG")
    without = (make_site(tmp_path / "plain") / "claims.html").read_text()
    assert "paper&#x27;s gap</th>" not in without


def test_claim_delta_from_the_comparisons_the_check_or_the_config():
    rows = pd.DataFrame({"id": ["c"], "estimate": [1.0]})
    checks = {"own": {"kind": "figure_above", "delta": 0.05}, "timing": {"kind": "figure_below"},
              "plain": {"kind": "above"}}
    assert claim_delta("c", rows.assign(delta=2.5), checks, {}) == 2.5
    assert claim_delta("own", rows, checks, {"claims": {"delta": 3.0}}) == 0.05
    assert claim_delta("timing", rows, checks, {}) == 0.05  # a fraction of the reference time
    assert claim_delta("plain", rows, checks, {"claims": {"delta": 3.0}}) == 3.0
    assert claim_delta("not-in-claims-yaml", rows, checks, {}) == 1.0


def smoke_config_at(tmp_path):
    """config/smoke.yaml with its results in tmp_path (the CLI loads a whole config)."""
    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "smoke.yaml").read_text())
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump({**config, "results_dir": str(tmp_path / "results")}))
    return path


def test_claims_command_prints_the_ledger_with_intervals(tmp_path, capsys):
    verdicts, comparisons = ledger([CLAIM, NOT_RUN], {**CONFIG, "tables": {"table3": SPEC}}, per_example())
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    verdicts.to_csv(tables / "claims.csv", index=False)
    comparisons.assign(paper_gap=4.5).to_csv(tables / "claims_comparisons.csv", index=False)
    main(["claims", "--config", str(smoke_config_at(tmp_path))])
    printed = capsys.readouterr().out
    assert "[holds] mole-wins (MoLE, Table 3)\n    MoLE <beats> single\n" in printed
    assert re.search(r"g1: mole > single: \+5\.00 \[\+\d\.\d\d, \+\d\.\d\d\], the paper's gap \+4\.50, "
                     r"20 examples, 3 seeds: holds", printed)
    assert "[not enough evidence] pems-wins" in printed and "not run at this scale: table9" in printed
    assert "2 claims: 1 holds, 0 fails, 1 not enough evidence, 0 not testable at this scale" in printed


def test_claims_command_names_the_missing_file_and_the_command_that_makes_it(tmp_path):
    config = smoke_config_at(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["claims", "--config", str(config)])
    message = str(exit_.value)
    assert f"{tmp_path}/results/tables/claims.csv does not exist" in message
    assert f"snakemake {tmp_path}/results/tables/claims.csv --configfile {config}" in message


def test_table_page_shows_ours_and_paper(tmp_path):
    page = (make_site(tmp_path) / "table3.html").read_text()
    assert "57.0 ± 1.0" in page  # mole, t_a rouge1: 50 + 5 + mean(1, 2, 3)
    assert "<b>57.0 ± 1.0</b>" in page  # mole beats single on every row
    assert "55.5</td>" in page and "77.7</td>" in page  # paper values for the matched row and the family average
    assert "no number for: t_a (rougeL)" in page
    cost = page[page.index("<h2>Cost</h2>"):]
    assert '<td class="key">mole</td><td>120</td><td>0</td><td>3,000</td><td>0.5</td>' in cost


def test_html_escapes_text(tmp_path):
    out = make_site(tmp_path, title="<script>alert(1)</script> & co")
    for page in ("index.html", "table3.html"):
        text = (out / page).read_text()
        assert "<script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text


def test_rerender_replaces_site(tmp_path):
    out = make_site(tmp_path)
    (out / "stale.html").write_text("old")
    make_site(tmp_path)
    assert not (out / "stale.html").exists()


def test_provenance_and_benchmarks(tmp_path):
    bench = tmp_path / "results/benchmarks/train/t_a/seed1.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tcpu_time\n12.5\t0:00:12\t812.3\t900.0\t11.0\n")
    df = load_benchmarks([str(bench)])
    assert df.to_dict("records") == [{"rule": "train", "job": "t_a/seed1", "s": 12.5, "cpu_s": 11.0, "max_rss": 812.3}]
    page = (make_site(tmp_path, benchmarks=df) / "provenance.html").read_text()
    for text in ("git_commit", "abc", "config_hash", "versions.torch", "hardware.cpu_count", "train", "812.3"):
        assert text in page
    assert "critical path" in page and '<td class="key">t_a/seed1</td><td>12.5</td>' in page
    assert "within budget" in page


def test_budget_report_says_when_a_run_is_over():
    bench = pd.DataFrame({"rule": ["base", "train", "train"], "job": ["b", "x", "y"], "s": [60.0, 600.0, 1200.0],
                          "cpu_s": [50.0, 590.0, 1190.0], "max_rss": [1.0] * 3})
    chains = [[("base", "b"), ("train", "x")], [("base", "b"), ("train", "y")]]
    est = budget.estimate(bench, chains, cores=2)
    assert est["critical_minutes"] == 21 and est["cpu_minutes"] == 30.5 and est["least_wall_minutes"] == 21
    text, fits = budget.report(bench, chains, {"cores": 2, "wall_minutes": 20})
    assert not fits and "OVER BUDGET" in text and text.index("train") < text.index("base")  # costliest rule first
    assert budget.report(bench, chains, {"cores": 2, "wall_minutes": 21})[1]
    est = budget.estimate(bench, [[("base", "b")]], cores=1)  # one core: the jobs' sum, not the path
    assert est["least_wall_minutes"] == 31
    text, fits = budget.report(bench, [*chains, [("base", "b"), ("train", "z")]], {"cores": 2, "wall_minutes": 60})
    assert not fits and "INCOMPLETE: 1 jobs" in text  # an unfinished run cannot be said to fit

DRY_RUN = """Building DAG of jobs...
Job stats:
job                count
---------------  -------
evaluate__a-seed1      3
evaluate__b-seed1      1
reproduce              1
train             2
total             7

[Wed Dec  2 19:34:36 2026]
rule train:
"""


def test_progress_counts_the_jobs_left_at_their_rules_median_time():
    left = budget.job_counts(DRY_RUN)
    assert left == {"evaluate": 4, "reproduce": 1, "train": 2, "total": 7}
    bench = pd.DataFrame({"rule": ["train"] * 3, "job": ["a", "b", "c"], "s": [60.0, 120.0, 600.0],
                          "cpu_s": [1.0] * 3, "max_rss": [1.0] * 3})
    minutes, unknown = budget.remaining(left, bench, cores=2)
    assert minutes == 2 and unknown == ["evaluate"]  # 2 jobs x the 2-minute median, on 2 cores
    line = budget.progress_line(left, 3, bench, 2)
    assert line.startswith("3 jobs done, 7 to run: at least 2 min left") and "not yet timed: evaluate (4 jobs)" in line
    assert "; 0 min by its median CPU time" in line  # 2 jobs x 1 CPU-s
    table = budget.projection(left, bench)  # where the time goes, rule by rule; the target rule runs nothing
    assert list(table.index) == ["train", "evaluate"] and table.loc["train", "wall_min"] == 4
    assert table.loc["train", "cpu_min"] == pytest.approx(2 / 60) and math.isnan(table.loc["evaluate", "cpu_min"])
    assert budget.progress_line(budget.job_counts("Nothing to be done."), 3, bench, 2).startswith("nothing left")


def test_run_progress_prints_a_line_when_a_rule_is_done_or_every_10_minutes_with_the_time_left(tmp_path):
    earlier = tmp_path / "results/benchmarks/evaluate/old.tsv"  # an earlier run's job: evaluate's prior time
    earlier.parent.mkdir(parents=True)
    earlier.write_text("s\th:m:s\tmax_rss\tcpu_time\n240.0\t0:04:00\t1.0\t200.0\n")
    now = [0.0]
    progress = budget.RunProgress(clock=lambda: now[0])
    progress.cores = 2
    progress.plan({"train": 2, "evaluate__a-seed1": 3, "evaluate__b-seed1": 1, "reproduce": 1, "total": 7})
    progress.job_started(1, "train", str(tmp_path / "results/benchmarks/train/a.tsv"))
    progress.job_started(2, "train")
    now[0] = 540.0
    assert progress.job_finished(1) is None  # train not done yet, and the last line (the start) 9 minutes ago
    assert progress.job_finished(99) is None  # a job it never saw start
    now[0] = 1200.0
    line = progress.job_finished(2)  # 4 evaluate jobs x 4 min (the earlier run's) on 2 cores
    assert line == "[molebench] train: all 2 jobs done | 2 of 7 jobs, 20 min elapsed, about 8 min left on 2 cores"
    for job in range(3, 7):  # rules made per batch count as their stage (`evaluate__{batch}`)
        progress.job_started(job, "evaluate__a-seed1" if job < 6 else "evaluate__b-seed1")
    now[0] = 1800.0  # 10 minutes after the last line: one during the stage
    assert progress.job_finished(3).startswith("[molebench] evaluate: 1 of 4 jobs done | 3 of 7 jobs, 30 min elapsed")
    now[0] = 2300.0  # within 10 minutes of the last line
    assert [progress.job_finished(job) for job in (4, 5)] == [None, None]
    now[0] = 4800.0
    assert progress.job_finished(6).startswith("[molebench] evaluate: all 4 jobs done | 6 of 7 jobs, 1 h 20 min "
                                               "elapsed")
    progress.job_started(7, "reproduce")
    assert progress.job_finished(7).endswith("7 of 7 jobs, 1 h 20 min elapsed, nothing left")


def test_a_fresh_clone_estimates_untimed_rules_at_the_reference_runs_times(tmp_path):
    bench = pd.DataFrame({"rule": ["train"] * 3 + ["evaluate"], "job": ["a", "b", "c", "x"],
                          "s": [60.0, 120.0, 600.0, 30.0], "cpu_s": [50.0, 100.0, 500.0, 20.0], "max_rss": [1.0] * 4})
    path = tmp_path / "timings/mini.csv"
    budget.save_reference(bench, path, {"git_commit": "abc", "cpu_capability": "AVX512"})
    assert path.read_text().startswith('# {"cpu_capability": "AVX512", "git_commit": "abc"}')
    reference = budget.load_reference(path).set_index("rule")
    assert reference.loc["train", "s"] == 120 and reference.loc["train", "cpu_s"] == 100  # the medians
    left = {"train": 2, "evaluate": 4, "total": 6}
    own = pd.DataFrame({"rule": ["evaluate"], "job": ["y"], "s": [90.0], "cpu_s": [80.0], "max_rss": [1.0]})
    line = budget.progress_line(left, 1, own, 2, budget.load_reference(path))
    # evaluate at this machine's 90 s, train at the reference's 120 s: (4 x 90 + 2 x 120) / 60 / 2 = 5 min
    assert line.startswith("1 jobs done, 6 to run: about 5 min left") and "reference run's times: train" in line
    assert "not yet timed" not in line

    with pytest.raises(FileNotFoundError, match="--save-reference"):
        budget.use_reference(str(tmp_path / "missing.csv"))
    budget.use_reference(str(path))
    try:
        progress = budget.RunProgress(clock=lambda: 0.0)
        progress.cores = 2
        progress.plan({"evaluate": 1, "train": 2, "total": 3})
        progress.job_started(1, "evaluate", str(tmp_path / "results/benchmarks/evaluate/x.tsv"))
        line = progress.job_finished(1)  # no benchmark files: train from the reference, 2 x 2 min on 2 cores
        assert line.endswith("about 2 min left on 2 cores (at the reference run's times: train)")
    finally:
        budget.use_reference(None)


def test_the_logger_plugin_feeds_snakemakes_events_to_run_progress(capsys):
    handler = LogHandler(SimpleNamespace(dryrun=False), None)

    def emit(**extra):
        handler.emit(logging.makeLogRecord(extra))

    emit(event=LogEvent.RESOURCES_INFO, cores=2)
    emit(event=LogEvent.RUN_INFO, stats={"train": 1, "total": 1})
    emit(event=LogEvent.JOB_INFO, jobid=5, rule_name="train", benchmark=None)
    emit(event=LogEvent.JOB_FINISHED, job_id=5)
    assert capsys.readouterr().err.startswith("\n[molebench] train: all 1 jobs done | 1 of 1 jobs")
    assert handler.progress.cores == 2 and not handler.writes_to_stream  # Snakemake's own console output stays


def test_pool_gain_passes_only_a_gain_beyond_its_interval(tmp_path):
    def gain_file(name, zero, lora):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"task": name, "family": "f", "metric": "exact_match", "n": len(zero),
                                    "zero_shot": zero, "lora": lora}))
        return str(path)

    files = [gain_file("learned", [0.0] * 40, [100.0] * 12 + [0.0] * 28),  # +30 points on 40 examples
             gain_file("one_lucky", [0.0] * 40, [100.0] + [0.0] * 39),  # +2.5: one example, within the noise
             gain_file("nothing", [100.0] * 4 + [0.0] * 36, [100.0] * 4 + [0.0] * 36)]
    table = pool_gain_table(files, Settings()).set_index("lora")
    assert table.passes.to_dict() == {"learned": True, "one_lucky": False, "nothing": False}
    assert table.loc["learned", "gain"] == 30 and table.loc["learned", "low"] > 10
    assert table.loc["nothing", "zero_shot"] == table.loc["nothing", "lora_score"] == 10
    assert pool_share(table.reset_index()) == "1 of 3 pool LoRAs pass (33%)"


def test_critical_path_is_the_longest_chain():
    bench = pd.DataFrame({"rule": ["base", "train", "train", "eval"], "job": ["b", "x", "y", "e"],
                          "s": [1.0, 5.0, 7.0, 2.0], "max_rss": [0.0] * 4})
    chains = [[("base", "b"), ("train", "x"), ("eval", "e")], [("base", "b"), ("train", "y"), ("eval", "e")],
              [("base", "b"), ("train", "z"), ("eval", "e")]]  # z has no benchmark file: counted as 0
    assert critical_path(bench, chains) == [("base", "b", 1.0), ("train", "y", 7.0), ("eval", "e", 2.0)]
    untimed = critical_path(bench, [[("base_model", "base"), ("train", "x")]])
    assert untimed[1] == ("train", "x", 5.0) and math.isnan(untimed[0][2])


def test_ramole_tables_get_a_linked_page_each(tmp_path):
    import pandas as pd

    paths = write_metrics(tmp_path, variants=("single", "mole", "zero-shot"))
    metrics = load_metrics(paths)
    mixed = pd.DataFrame([{"kind": "task", "domain": "qa", "task": "t<1>", "ramole:exact_match": 12.5},
                          {"kind": "average", "domain": "all", "task": "average", "ramole:exact_match": 12.5}])
    out = tmp_path / "site"
    no_claims = ledger([], {"groups": GROUPS, "tables": {}})
    render_site(out, {}, {}, lora_gain_table(metrics, GROUPS, TASKS, "zero-shot", "single"), no_claims, load_provenance(paths), None, CONFIG,
                [], load_costs(paths), CHAINS, {"ramole_mixed_iid": mixed})
    assert 'href="ramole_mixed_iid.html"' in (out / "index.html").read_text()
    page = (out / "ramole_mixed_iid.html").read_text()
    assert "mixed-task evaluation, IID" in page and "t&lt;1&gt;" in page and "<td>12.5</td>" in page
    assert '<tr class="average">' in page and (out / "ramole_mixed_iid.csv").is_file()


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_browser_check_finds_broken_links_and_images(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "ok.html").write_text('<html><head><title>ok</title></head><body><table></table>'
                                  '<a href="gone.html">x</a><a href="ok.html">y</a><img src="gone.png"></body></html>')
    report = check_pages(site, ["ok.html", "missing.html"], tmp_path)
    broken = {(r["page"], r["kind"], r["target"]) for r in report if not r["ok"]}
    assert broken == {("ok.html", "link", "gone.html"), ("ok.html", "image", "gone.png"),
                      ("missing.html", "page", "missing.html")}
    assert report[0]["title"] == "ok" and report[0]["tables"] == 1


def test_text_to_image_pages_are_copied_in_and_linked(tmp_path):
    pages = tmp_path / "t2i_report"
    pages.mkdir()
    (pages / "index.html").write_text("<html>t2i</html>")
    out = make_site(tmp_path, t2i_pages=pages)
    assert 'href="t2i/index.html"' in (out / "index.html").read_text()
    assert (out / "t2i" / "index.html").read_text() == "<html>t2i</html>"
    assert 't2i/index.html' not in (make_site(tmp_path / "plain") / "index.html").read_text()


def test_a_lock_is_stale_only_when_no_snakemake_process_of_the_directory_lives(tmp_path):
    run_dir, other_dir = tmp_path / "run", tmp_path / "other"
    other_dir.mkdir()
    assert not scheduling.stale_lock(run_dir) and scheduling.unlock_stale(run_dir) is None  # no lock at all
    (run_dir / ".snakemake/locks").mkdir(parents=True)
    (run_dir / ".snakemake/locks/0.input.lock").write_text("")
    assert scheduling.stale_lock(run_dir)  # a killed run's lock: nothing holds it

    def job_in(cwd):  # a Snakemake job's process: its script lives under .snakemake/
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", ".snakemake/scripts/job.py"],
                                cwd=cwd)

    def wait_until_listed(proc, cwd):
        for _ in range(50):  # until the process shows its working directory and arguments
            if proc.pid in scheduling.snakemake_processes(cwd):
                return
            time.sleep(0.1)
        raise AssertionError(f"process {proc.pid} never listed")

    jobs = [job_in(other_dir)]
    try:
        wait_until_listed(jobs[0], other_dir)
        assert scheduling.stale_lock(run_dir)  # a run in another directory holds no lock here
        jobs.append(job_in(run_dir))
        wait_until_listed(jobs[1], run_dir)
        assert not scheduling.stale_lock(run_dir)  # a live run of this directory holds it
    finally:
        for job in jobs:
            job.kill()
            job.wait()
    assert scheduling.stale_lock(run_dir)
