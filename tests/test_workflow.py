"""The Snakemake DAG end to end at the smoke scale, from a clean copy of the repository, plus parse-time errors."""

import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from browser import CHROMIUM, MISSING, check_pages
from snakemake.scheduling.job_scheduler import JobScheduler

from molebench import scheduling
from molebench.bench import scheduler
from molebench.nlp import plan
from molebench.report import budget

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", ".venv", "results", "reports", ".snakemake", "raw", "__pycache__", "*.egg-info")


def with_plugins(workdir: Path) -> dict:
    """The environment with `workdir`'s plugins/ folder (an installed method package, below) on the Python path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir / "plugins"),
                                                                      os.environ.get("PYTHONPATH")]))}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True, text=True,
                          check=False, env=with_plugins(workdir))
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


# docs/adding_a_method.md: a method is one module and one variant entry; nothing else is edited. Here the module
# comes as an installed package that declares it in the `molebench.methods` entry-point group (a module dropped into
# methods/ is found the same way, but the copy below runs the installed molebench, whose methods/ is the original).
PLUGIN = """'''A method written by the workflow test: half of every LoRA's output, summed.'''

import torch

from molebench.core.bank import inject
from molebench.core.method import Method, register_method


@register_method("half-sum")
class HalfSum(Method):
    description = "half of every LoRA's output, summed (a plug-in written by tests/test_workflow.py)"

    def build(self, base, experts):
        weights = torch.full((len(experts),), 0.5)
        inject(base, experts, lambda layer, x: layer.bank.mix(layer.bank.low_rank(x), weights.to(x.device)))
        return base.eval()
"""
PLUGIN_CONFIG = {"variants": {"half-sum": {"method": "half-sum"}},
                 "tables": {"plugin": {"title": "a plug-in method", "groups": ["smoke_gen"],
                                       "variants": ["zero-shot", "half-sum"]}}}


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    """A clean copy of the repository with one new method plug-in: its module file, and its variant and a table in
    the smoke config."""
    copy = tmp_path_factory.mktemp("repo") / "molebench"
    shutil.copytree(REPO, copy, ignore=IGNORE)
    plugins = copy / "plugins"
    (plugins / "half_sum-0.1.dist-info").mkdir(parents=True)
    (plugins / "half_sum.py").write_text(PLUGIN)
    (plugins / "half_sum-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: half-sum\nVersion: 0.1\n")
    (plugins / "half_sum-0.1.dist-info" / "entry_points.txt").write_text("[molebench.methods]\nhalf-sum = half_sum\n")
    smoke = yaml.safe_load((copy / "config/smoke.yaml").read_text())
    for section, entries in PLUGIN_CONFIG.items():
        smoke[section].update(entries)
    (copy / "config/smoke.yaml").write_text(yaml.safe_dump(smoke, sort_keys=False))
    return copy


@pytest.fixture(scope="module")
def smoke_run(repo_copy) -> Path:
    done = snakemake(repo_copy, "reproduce", "--cores", "2", "--configfile", "config/smoke.yaml")
    (repo_copy / "smoke.log").write_text(done.stderr)  # Snakemake's console output, with the progress lines
    return repo_copy


def test_a_method_added_as_one_file_runs_through_the_dag(smoke_run):
    table = pd.read_csv(smoke_run / "results/smoke/tables/plugin.csv")
    assert table["half-sum:mean"].notna().all() and (smoke_run / "reports/smoke/site/plugin.html").is_file()


def test_smoke_dag_writes_tables_and_site(smoke_run):
    config = plan.expand(yaml.safe_load((smoke_run / "config/smoke.yaml").read_text()))  # with the scaling groups
    for name, spec in config["tables"].items():
        table = pd.read_csv(smoke_run / "results/smoke/tables" / f"{name}.csv")
        for variant in spec["variants"]:
            assert table[f"{variant}:mean"].notna().all(), (name, variant)
        tasks = {t for g in spec["groups"] for t in config["groups"][g]}
        assert set(table[table.kind == "task"].task) == tasks
    site = smoke_run / "reports/smoke/site"
    index = (site / "index.html").read_text()
    for page in [*config["tables"], *config["figures"], "masking", "claims", "lora_gain", "provenance"]:
        assert f'href="{page}.html"' in index and (site / f"{page}.html").is_file()
    for figure in config["figures"]:
        assert (site / f"{figure}.png").read_bytes().startswith(b"\x89PNG")
    masking = pd.read_csv(smoke_run / "results/smoke/tables/masking.csv")
    dropped = [f"drop-{t}" for t in config["groups"][config["masking"]["group"]]]
    assert list(dict.fromkeys(masking.group)) == dropped
    assert masking[[f"{v}:mean" for v in config["masking"]["variants"]]].notna().all().all()
    claims = pd.read_csv(smoke_run / "results/smoke/tables/claims.csv")
    assert set(claims.verdict) <= {"holds", "fails", "not enough evidence", "not testable at this scale"}
    assert len(claims) > 0
    log = (smoke_run / "smoke.log").read_text()  # the profile's logger plugin: a line per finished rule
    # "at least" while a rule has no time yet (the smoke config names no reference run)
    assert re.search(r"\[molebench\] train_lora: all \d+ jobs done \| \d+ of \d+ jobs, \d+ min elapsed, (about|at least) ",
                     log)
    assert re.search(r"\[molebench\] reproduce: all 1 jobs done \| (\d+) of \1 jobs, .* nothing left", log)
    gain = pd.read_csv(smoke_run / "results/smoke/tables/lora_gain.csv")
    assert set(gain.task) == {t for g in config["groups"].values() for t in g}


def test_claims_cli_on_existing_results_matches_the_claims_rule(smoke_run):
    """`molebench claims --existing` on a finished run computes the ledger the claims rule wrote."""
    done = subprocess.run([sys.executable, "-m", "molebench.cli", "claims", "--existing", "--config",
                           "config/smoke.yaml"], cwd=smoke_run, capture_output=True, text=True, check=False,
                          env=with_plugins(smoke_run))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not computed" not in done.stdout
    tables = smoke_run / "results/smoke/tables"
    pd.testing.assert_frame_equal(pd.read_csv(tables / "claims_existing.csv"), pd.read_csv(tables / "claims.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(tables / "claims_existing_comparisons.csv"),
                                  pd.read_csv(tables / "claims_comparisons.csv"))


def test_pipeline_bench_times_every_chain_of_the_finished_dag(smoke_run):
    """`molebench bench --pipeline` takes the critical path over the DAG's chains (the NLP track's and the
    text-to-image slice's): on a finished run every step names a job that wrote its benchmark file."""
    done = subprocess.run([sys.executable, "-m", "molebench.cli", "bench", "--pipeline", "--config",
                           "config/smoke.yaml"], cwd=smoke_run, capture_output=True, text=True, check=False,
                          env=with_plugins(smoke_run))
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: over the smoke's budget, which it still is
    assert "critical path" in done.stdout and "INCOMPLETE" not in done.stdout, done.stdout[-2000:]


def test_smoke_dag_runs_table6_over_nested_pool_loras(smoke_run):
    """MoLE Table 6: one row block per size, each composition's LoRAs the first N of one draw (the group's own
    included, trained by scaling_lora) in an order of its own, scored on the group's tasks; the claim is judged at
    this scale or says what is missing."""
    config = plan.expand(yaml.safe_load((smoke_run / "config/smoke.yaml").read_text()))
    results = smoke_run / "results/smoke"
    table = pd.read_csv(results / "tables/table6.csv")
    sizes = plan.scaling_groups(config)
    assert list(dict.fromkeys(table.group)) == list(sizes)
    own = config["groups"][config["scaling"]["group"]]
    used = {}
    for group, size in sizes.items():
        scored = yaml.safe_load((results / f"metrics/mole/{group}/seed2/{own[0]}.json").read_text())  # JSON is YAML
        used[size] = scored["run_info"]["config"]["adapters"]
        assert len(used[size]) == size and all(a.endswith("/seed1") for a in used[size])  # the pool's one seed
    small, large = sorted(used)
    assert set(used[small]) < set(used[large])
    assert all(used[size] == plan.adapter_dirs(config, "mole", group, 2) for group, size in sizes.items())
    assert {f"results/smoke/scaling/loras/{t}/seed1" for t in own} <= set(used[small])
    assert "results/smoke/ramole/loras/dyck_languages/seed1" in used[large]  # the extra pool task
    claims = pd.read_csv(results / "tables/claims.csv").set_index("id")
    assert claims.evidence["mole-best-at-every-size"] == "not run at this scale: pems in table6"


def test_smoke_dag_runs_mixlora_single_and_multi_task(smoke_run):
    """MixLoRA's outputs: the official-format folder, utilisation shares per layer summing to one on every task of
    the group, the efficiency rows of both paths, and the label-logit protocol recorded where a variant asks for it."""
    results = smoke_run / "results/smoke"
    official = results / "methods/mixlora-mt/smoke_mc/seed1/official"
    assert (official / "adapter_config.json").is_file() and (official / "adapter_model.bin").is_file()
    shares = pd.read_csv(results / "figures/mixlora_utilisation.csv")
    assert set(shares.task) == {"smoke_parity_mc", "smoke_add"} and set(shares.variant) == {"mixlora-st", "mixlora-mt"}
    sums = shares.groupby(["variant", "task", "seed", "layer"]).share.sum()
    assert ((sums - 1).abs() < 1e-4).all()
    efficiency = pd.read_csv(results / "figures/mixlora_efficiency.csv")
    assert set(zip(efficiency["mode"], efficiency.path)) == {(m, p) for m in ("inference", "training")
                                                             for p in ("plain", "optimised")}
    scored = yaml.safe_load((results / "metrics/dora-mt/smoke_mc/seed1/smoke_parity_mc.json").read_text())
    assert scored["protocol"]["mc_scoring"] == "label_logit"


def test_example_composes_the_smoke_dags_loras_as_own_experts_scored_by_lm_eval(smoke_run):
    """config/examples/own_experts.yaml over the LoRAs the smoke DAG wrote, as a user's own: NLA, LoraHub, PEMs and
    MoLE composed, scored on a local lm-eval task and a molebench task; LoRA compositions out as PEFT folders."""
    snakemake(smoke_run, "results/example/tables/own_experts.csv", "--cores", "2", "--configfile",
              "config/examples/own_experts.yaml")
    results = smoke_run / "results/example"
    table = pd.read_csv(results / "tables/own_experts.csv")
    assert set(table.task) == {"example_parity", "smoke_add", "average"}
    assert all(table[f"{v}:mean"].notna().all() for v in ("zero-shot", "nla-output", "lorahub", "pems", "mole"))
    scored = yaml.safe_load((results / "metrics/mole/mine/seed1/example_parity.json").read_text())
    assert scored["n"] == 12 and scored["protocol"]["harness"].startswith("lm-eval")
    for variant in ("nla-output", "lorahub", "pems"):
        assert (results / f"metrics/{variant}/mine/seed1/adapter/adapter_model.safetensors").is_file()
    assert not (results / "metrics/mole/mine/seed1/adapter").exists()  # MoLE's gates are no LoRA: their folder is
    assert (results / "methods/mole/mine/seed1/loras.json").is_file()
    assert not (results / "adapters").exists()  # no LoRA was trained: the experts were brought


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_site_loads_in_chromium_with_no_broken_links_or_images(smoke_run, tmp_path):
    site = smoke_run / "reports/smoke/site"
    pages = sorted(p.name for p in site.glob("*.html"))
    report = check_pages(site, pages, tmp_path)
    assert [r for r in report if not r["ok"]] == []
    loaded = {r["page"]: r for r in report if r["kind"] == "page"}
    assert set(loaded) == set(pages)
    config = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())
    for page in ["index", "claims", "masking", *config["tables"]]:
        assert loaded[f"{page}.html"]["tables"] > 0, page
    images = {r["target"] for r in report if r["kind"] == "image"}
    assert {f"{name}.png" for name in [*config["tables"], *config["figures"]]} <= images


def test_finished_dag_has_nothing_to_do_and_report_embeds_site(smoke_run):
    done = snakemake(smoke_run, "reproduce", "-n", "--configfile", "config/smoke.yaml")
    assert "Nothing to be done" in done.stdout + done.stderr
    snakemake(smoke_run, "reproduce", "--cores", "1", "--report", "reports/smoke/report.zip", "--configfile",
              "config/smoke.yaml")
    with zipfile.ZipFile(smoke_run / "reports/smoke/report.zip") as report:  # the Snakemake report embeds the site
        names = set(report.namelist())
        index = next(n for n in names if n.endswith("/index.html") and n.replace("index.html", "table3.html") in names)
        assert 'href="claims.html"' in report.read(index).decode()


def test_mini_dag_plans_offline(repo_copy):
    done = snakemake(repo_copy, "reproduce", "-n")  # the default sitting: MoLE on the NLP task families
    assert "train_lora" in done.stdout and "site" in done.stdout
    assert "ramole_lora" not in done.stdout and "t2i_base" not in done.stdout
    whole = snakemake(repo_copy, "reproduce", "-n", "--configfile", "config/config.yaml", "config/skill_world.yaml",
                      "config/t2i.yaml")  # make reproduce-all
    for rule in ("train_lora", "ramole_lora", "scaling_lora", "t2i_base", "t2i_compose", "site"):
        assert f"rule {rule}:" in whole.stdout, rule


@pytest.mark.parametrize("change,message", [
    ({"variants": {"typo": {"method": "mixlorra"}}}, "unknown method 'mixlorra'"),
    ({"groups": {"smoke_gen": ["smoke_add", "no_such_task"]}}, "unknown task 'no_such_task'"),
    ({"variants": {"mole": {"method": "mole", "options": {"granularity": "token"}}}}, "granularity must be one of"),
    ({"seeds": "one"}, "seeds"),
    ({"compose_from": {"no_such_group": ["smoke_add"]}}, "compose_from.no_such_group: not a group"),
    ({"scaling": {"sizes": [3, 99]}}, "scaling.sizes: 99 LoRAs, but the pool has only 8"),
    ({"lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "rank": 3}}, None),
    ({"variants": {"mixlora-mt": {"method": "mixlora", "options": {"num_experts": 2, "top_k": 3}}}},
     "top_k must be between 1 and num_experts"),
])
def test_bad_config_fails_at_parse_time_with_a_readable_message(repo_copy, tmp_path, change, message):
    config = yaml.safe_load((repo_copy / "config/smoke.yaml").read_text())
    for key, value in change.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key != "lora" else value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    done = snakemake(repo_copy, "reproduce", "-n", "--configfile", str(bad), check=False)
    assert done.returncode != 0
    assert (message or "rank") in done.stdout + done.stderr


def test_smoke_dag_from_scratch_twice_gives_byte_identical_tables(smoke_run):
    """Table 7 retrains every LoRA and gate it needs from nothing (every MoLE variant); the other methods' seeded
    parts have their own determinism tests (tests/test_pipeline.py, tests/test_baselines.py)."""
    snakemake(smoke_run, "results/smoke-again/tables/table7.csv", "--cores", "2", "--configfile", "config/smoke.yaml",
              "--config", "results_dir=results/smoke-again", "reports_dir=reports/smoke-again")
    table = "table7.csv"
    assert (smoke_run / "results/smoke/tables" / table).read_bytes() == \
        (smoke_run / "results/smoke-again/tables" / table).read_bytes()


def test_mask_cli_scores_trained_gates_with_a_lora_dropped(smoke_run):
    done = subprocess.run([sys.executable, "-m", "molebench.cli", "mask", "mole", "smoke_mc", "--drop", "smoke_add",
                           "--config", "config/smoke.yaml"], cwd=smoke_run, capture_output=True, text=True, check=False,
                          env=with_plugins(smoke_run))
    assert done.returncode == 0, done.stderr[-3000:]
    out = smoke_run / "results/smoke/masked/mole/smoke_mc/seed1/drop-smoke_add"
    gates = yaml.safe_load((out / "smoke_parity_mc.gates.json").read_text())  # JSON is YAML
    assert gates["masked"] == ["smoke_add"] and gates["source"] == "inference"
    dropped = gates["experts"].index("smoke_add")
    assert all(g["mean_weights"][dropped] == 0 for g in gates["gates"].values())
    bad = subprocess.run([sys.executable, "-m", "molebench.cli", "mask", "mole", "smoke_mc", "--drop", "smoke_add",
                          "smoke_parity_mc", "--config", "config/smoke.yaml"], cwd=smoke_run, capture_output=True,
                         text=True, check=False, env=with_plugins(smoke_run))
    assert bad.returncode != 0 and "drops every LoRA" in bad.stderr


# ---- RAMoLE (issue 6) --------------------------------------------------------------------------------------------

def test_smoke_dag_renders_ramole_tables(smoke_run):
    config = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())["ramole"]
    pool = [t for tasks in config["pool"].values() for t in tasks]
    retrieval = pd.read_csv(smoke_run / "results/smoke/tables/ramole_retrieval.csv")
    assert set(retrieval.embedder) == {"pretrained", "finetuned"}
    assert {"iid_top1", "iid_top3", "ood_top1", "ood_top3"} <= set(retrieval.columns)
    for setting in ("iid", "ood"):
        table = pd.read_csv(smoke_run / f"results/smoke/tables/ramole_mixed_{setting}.csv")
        assert set(table[table.kind == "task"].task) == set(pool)
        assert set(table[table.kind == "domain average"].domain) == set(config["pool"])
        methods = [m for m in config["methods"] if not (setting == "ood" and m == "oracle")]
        assert set(table.seed) == set(config["seeds"])
        assert [c.split(":")[0] for c in table.columns
                if c.endswith(":exact_match") and not c.startswith("paper:")] == methods
    predictions = (smoke_run / "results/smoke/ramole/seed1/eval/ramole/ood.predictions.jsonl").read_text().splitlines()
    for line in map(yaml.safe_load, predictions):  # OOD: a sample never composes its own task's LoRA
        assert line["task"] not in line["loras"] and len(line["loras"]) == config["retriever"]["top_k"]
    index = (smoke_run / "reports/smoke/site/index.html").read_text()
    assert all(f'href="{name}.html"' in index for name in ("ramole_retrieval", "ramole_mixed_iid", "ramole_mixed_ood",
                                                           "pool_gain"))
    gain = pd.read_csv(smoke_run / "results/smoke/tables/pool_gain.csv")  # scored inside each pool LoRA's job
    assert set(pool) < set(gain.lora) and (gain.n == config["data"]["n_test"]).all()
    assert (gain.low <= gain.gain).all() and (gain.gain <= gain.high).all()


def test_adding_a_lora_to_the_pool_trains_only_that_lora(smoke_run, tmp_path):
    config = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())
    config["ramole"]["pool"]["skills"].append("multistep_arithmetic")  # in no pool yet (dyck_languages is Table 6's)
    grown = tmp_path / "grown.yaml"
    grown.write_text(yaml.safe_dump(config, sort_keys=False))  # key order is part of rule params
    done = snakemake(smoke_run, "reproduce", "-n", "--configfile", str(grown))
    counts = budget.job_counts(done.stdout)
    assert counts["ramole_data"] == counts["ramole_lora"] == 1, counts
    assert counts["ramole_embed"] == len(config["ramole"]["seeds"])  # one job per run seed re-embeds the pool
    assert "ramole_retriever" not in counts  # the retriever's fine-tuning tasks are fixed
    assert "results/smoke/ramole/seed1/embeddings/multistep_arithmetic.pt" in done.stdout


def test_an_edited_pool_entry_reruns_its_data_and_its_lora_only(smoke_run, tmp_path):
    """Snakemake reruns a job for a changed param only when the param is a plain value: a task spec goes to its rules
    as a dict (TaskSpec.to_dict), so a pool entry moved to another domain (its spec's family) is retrained."""
    config = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())
    config["ramole"]["pool"]["skills"].remove("skill_lists_first")
    config["ramole"]["pool"]["smoke"].append("skill_lists_first")
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump(config, sort_keys=False))
    done = snakemake(smoke_run, "reproduce", "-n", "--configfile", str(moved))
    counts = budget.job_counts(done.stdout)
    assert counts["ramole_data"] == counts["ramole_lora"] == 1, counts
    assert "results/smoke/ramole/loras/skill_lists_first/seed1" in done.stdout


@pytest.mark.parametrize("edit", [("router", "train", "steps"), ("eval", "per_task")])
def test_an_edited_ramole_setting_reruns_only_the_stages_that_read_it(smoke_run, tmp_path, edit):
    """Each RAMoLE job gets the part of the `ramole` block its stage reads: an edited router setting reruns the routers
    and the run's scoring job, an edited mixed-task evaluation the scoring job only; neither retrains a pool LoRA."""
    config = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())
    *path, key = edit
    section = config["ramole"]
    for part in path:
        section = section[part]
    section[key] += 1
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(config, sort_keys=False))
    done = snakemake(smoke_run, "reproduce", "-n", "--configfile", str(edited))
    counts = budget.job_counts(done.stdout)
    seeds = len(config["ramole"]["seeds"])
    assert counts.get("ramole_router", 0) == (seeds if "router" in edit else 0), counts
    assert counts["ramole_evaluate"] == seeds, counts  # one job scores every method of a run
    assert not {"ramole_lora", "scaling_lora", "ramole_embed", "ramole_retrieve"} & set(counts), counts


def test_smoke_dag_renders_the_text_to_image_tables_grids_and_images(smoke_run):
    """Every t2i rule ran on tiny random pipelines: Tables 1, 9, 10 hold a number in every cell of ours, the grids and
    the masking grid are in the site, and each image says how it was made."""
    from PIL import Image

    t2i = yaml.safe_load((smoke_run / "config/smoke.yaml").read_text())["t2i"]
    site = smoke_run / "reports/smoke/site"
    assert 'href="t2i/index.html"' in (site / "index.html").read_text()
    for name in t2i["tables"]:
        table = pd.read_csv(site / "t2i" / f"{name}.csv")
        ours = [c for c in table.columns if "Alignment" in c.title() and not c.startswith("paper")]
        rows = table[~table.iloc[:, 0].astype(str).str.startswith("paper")]
        assert ours and rows[ours].notna().all().all(), name
        assert (site / "t2i" / f"{name}.html").is_file()
    pngs = [p for p in (site / "t2i").glob("*.png")]
    assert {"masking.png"} < {p.name for p in pngs} and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    image = next((smoke_run / "results/smoke/t2i/metrics").glob("*/*/seed*/images/p0_0.png"))
    assert {"prompt", "seed", "method"} <= set(Image.open(image).text)


def test_the_scheduler_keeps_one_reevaluation_timer_however_often_it_is_asked():
    assert scheduling.install() and JobScheduler._schedule_reevalutation is scheduling._one_timer
    woken = SimpleNamespace(_open_jobs=threading.Semaphore(0))
    for _ in range(50):  # 50 scheduling passes within one timespan: Snakemake's own would start 50 timers
        JobScheduler._schedule_reevalutation(woken, 0.2)
    assert [t.daemon for t in threading.enumerate() if isinstance(t, threading.Timer)] == [True]
    assert woken._open_jobs.acquire(timeout=5)  # one wake-up ...
    assert not woken._open_jobs.acquire(timeout=0.5)  # ... and only one
    JobScheduler._schedule_reevalutation(woken, 0.05)  # the pass it woke starts the next one
    assert woken._open_jobs.acquire(timeout=5)


def test_scheduler_bench_runs_the_generated_workflow_under_each_setting():
    rows = scheduler.run(pairs=1, jobs=3, sleep=0)  # check=True inside: a failed Snakemake run raises
    assert [r["scheduler"] for r in rows] == list(scheduler.SETTINGS)
    assert all(r["jobs"] == 6 and r["runs"] == 1 and r["median_cpu_s"] > 0 for r in rows)
    ours = rows[list(scheduler.SETTINGS).index(scheduler.WORKFLOW)]
    assert ours["cpu_ratio_to_workflow"] == ours["wall_ratio_to_workflow"] == 1.0


KILLED_ONCE = """
from molebench import scheduling

scheduling.install()
scheduling.claim_memory(workflow)

rule all:
    input: "dies_once", "a", "b"

rule dies_once:  # killed on its first attempt, as the kernel kills a job out of memory
    output: "dies_once"
    shell: "if [ ! -e tried ]; then touch tried; kill -9 $$; fi; sleep 1; ls running > {output}"

rule beside:
    output: "{name,[ab]}"
    shell: "mkdir -p running; touch running/{output}; sleep 4; rm running/{output}; touch {output}"
"""


def test_a_job_killed_for_memory_runs_again_alone(tmp_path):
    # the repository's default profile (every job claims 2 GB first, the whole machine on its one retry) with the
    # Snakefile's molebench.scheduling: the killed job starts beside the others and reruns when they have ended
    (tmp_path / "Snakefile").write_text(KILLED_ONCE)
    shutil.copytree(REPO / "profiles" / "default", tmp_path / "profiles" / "default")
    done = snakemake(tmp_path, "--cores", "3")
    assert (tmp_path / "tried").is_file() and done.stderr.count("Trying to restart job") == 1
    assert (tmp_path / "dies_once").read_text() == ""  # nothing was running beside the retry
    assert (tmp_path / "a").is_file() and (tmp_path / "b").is_file()
