"""The paper scale offline: its config passes the parse-time checks, its DAG plans without network, its tasks match
the paper's table rows, and every hub loader renders the right records from local files in the real datasets' schema.

No test here reaches the hub. `datasets.load_dataset` is replaced by a stand-in that checks the hub arguments the task
file gives, then reads a local JSON Lines file with datasets' own `json` builder, so the rows arrive with the same
nested Arrow types (lists, structs) as the real dataset's and go through the real field mapping and templates.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pandas as pd
import pytest
import yaml
from lm_eval.tasks import TaskManager

from molebench.config import load_config
from molebench.core.data import build_splits, list_tasks, load_task
from molebench.core.errors import ConfigError
from molebench.nlp import plan
from tests.conftest import mini_config
from tests.rehearsal import ROWS

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = REPO / "config" / "paper.yaml"
PAPER_TASKS = [t for t in list_tasks() if t.startswith("paper_")]
IGNORE = shutil.ignore_patterns(".git", ".venv", "results", "reports", ".snakemake", "raw", "__pycache__", "*.egg-info")


# ---- the config and the DAG ----------------------------------------------------------------------------------

def test_paper_config_passes_the_parse_time_checks():
    config = load_config(PAPER_CONFIG)
    assert config["model"] == {"source": "hub", "name": "google/flan-t5-large"}
    assert config["results_dir"] == "results/paper" and config["reports_dir"] == "reports/paper"
    mini = mini_config()
    assert set(config["variants"]) == set(mini["variants"])
    # Table 6 draws up to 128 LoRAs from a pool; the paper config's pool (its ramole: block) holds 19 (docs/scales.md)
    harness = {"table3_lm_eval", "mixlora_multi_lm_eval"}  # the same compositions, scored by lm-eval's definitions
    assert set(config["tables"]) - harness == set(mini["tables"]) - {"table6"}
    for name in ("mole", "mole-no-balance"):  # MoLE Section 5: 800 iterations, lr 1e-5, batch 12
        assert config["variants"][name]["train"] == {"steps": 800, "lr": 1e-5, "batch_size": 12}
    assert config["variants"]["mole"]["options"]["balance_alpha"] == 0.5


def test_every_paper_task_is_in_a_group_and_only_paper_tasks_are():
    config = yaml.safe_load(PAPER_CONFIG.read_text())
    harness = config["lm_eval"]["tasks"]
    assert sorted({t for tasks in config["groups"].values() for t in tasks} - set(harness)) == sorted(PAPER_TASKS)
    for group, tasks in config["groups"].items():  # a group is named after its tasks' family, first
        (family,) = {harness[t]["family"] if t in harness else load_task(t).family for t in tasks}
        assert group.startswith(family), group


def test_the_paper_tasks_in_lm_eval_are_lm_evals_own_and_share_the_compositions_of_their_groups():
    config = load_config(PAPER_CONFIG)
    known = TaskManager().all_tasks
    assert set(config["lm_eval"]["tasks"]) <= set(known)
    for group, source in (("nli_lm_eval", "nli"), ("commonsense_lm_eval", "commonsense")):
        assert len(config["groups"][group]) == len(config["groups"][source])
        for variant in ("mole", "mixlora-mt", "nla-output"):  # trained once, on the source group; NLA trains nothing
            assert plan.method_dir(config, variant, group, 1) == plan.method_dir(config, variant, source, 1)
    assert plan.method_dir(config, "mole", "nli", 1) == "results/paper/methods/mole/nli/seed1"


def test_paper_tasks_match_the_papers_rows():
    published = pd.concat([pd.read_csv(REPO / "data" / "paper" / f"mole_table{n}.csv") for n in (3, 7)])
    rows = set(zip(published.family, published.paper_task))
    # the MixLoRA tables hold only the headline averages: its tasks are the eight of its commonsense suite
    mixlora = pd.concat([pd.read_csv(REPO / "data" / "paper" / f"mixlora_{s}_task.csv") for s in ("single", "multi")])
    assert set(mixlora.paper_task) == {"Average"} and set(mixlora.family) == {"commonsense"}
    suite = {"ARC-e", "ARC-c", "BoolQ", "OBQA", "PIQA", "SIQA", "HellaSwag", "WinoGrande"}
    for name in PAPER_TASKS:
        spec = load_task(name)
        if spec.family == "commonsense":
            assert spec.paper_task in suite, name
        else:
            assert (spec.family, spec.paper_task) in rows, name
    assert {load_task(t).paper_task for t in PAPER_TASKS if load_task(t).family == "commonsense"} == suite


def test_paper_dag_plans_offline(tmp_path):
    """The full DAG plans with the hub unreachable: loading task specs reads YAML only."""
    copy = tmp_path / "molebench"
    shutil.copytree(REPO, copy, ignore=IGNORE)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    # --configfile takes several files, so the target goes before it
    done = subprocess.run([sys.executable, "-m", "snakemake", "reproduce", "-n", "--configfile", "config/paper.yaml"],
                          cwd=copy, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    counts = dict(line.split() for line in done.stdout.split("Job stats:")[1].splitlines()[3:]
                  if len(line.split()) == 2)
    assert counts["task_data"] == str(len(PAPER_TASKS)) and counts["train_lora"] == str(3 * len(PAPER_TASKS))
    assert counts["table"] == str(len(yaml.safe_load(PAPER_CONFIG.read_text())["tables"])) and counts["site"] == "1"
    # a trained composition is scored in its compose job, except a `scored_from` variant's and a group's that shares
    # another group's training (lm-eval's definitions of the NLI tasks): those load the trained state in evaluate
    config = load_config(PAPER_CONFIG)
    scored = [Path(d).parts[-3:-1] for d in plan.all_evaluation_dirs(config)]
    in_compose = [plan.scored_in_compose(config, v, g) for v, g in scored]
    batches = {plan.evaluate_batch(config, *plan.parse_metrics_dir(d)) for d, compose in
               zip(plan.all_evaluation_dirs(config), in_compose, strict=True) if not compose}
    masking = config["masking"]
    batches |= {plan.evaluate_batch(config, v, masking["group"], s) for v in masking["variants"]
                for s in plan.seeds_of(config, v)}
    assert {r.removeprefix("evaluate__") for r in counts if r.startswith("evaluate__")} == batches
    assert plan.scored_in_compose(config, "mole", "nli") and not plan.scored_in_compose(config, "mole", "nli_lm_eval")
    assert ("multitask-layers-0-20", "nli_table5") in scored and not plan.scored_in_compose(
        config, "multitask-layers-0-20", "nli_table5")
    ramole = yaml.safe_load(PAPER_CONFIG.read_text())["ramole"]
    pool = [t for tasks in ramole["pool"].values() for t in tasks]
    assert counts["ramole_data"] == counts["ramole_lora"] == str(len(pool))  # one pool, trained once
    assert counts["ramole_embed"] == str(len(ramole["seeds"]))  # each run seed embeds the pool with its retriever
    assert counts["ramole_router"] == str(len(ramole["seeds"]))
    assert counts["ramole_tables"] == counts["claims"] == "1"


def test_paper_ramole_block_is_the_papers_setting_on_hub_loaded_flan_tasks():
    """RAMoLE at paper scale: a pool of FLAN-v2 tasks that all have hub loaders (tested below), k = 3, m = 20, the
    retriever fine-tuned on 40% of the pool, 50 new tokens; LoRAs that attach to FLAN-T5 and to the Llama-2 override."""
    from molebench.core.data import pool_tasks

    ramole = load_config(PAPER_CONFIG)["ramole"]
    specs = pool_tasks(ramole["pool"])
    assert set(specs) <= set(PAPER_TASKS) and len(specs) == 19
    # hub loaders only, and answered by generation: the mixed-task set is scored by exact match of generated text
    assert all(spec.source["kind"] == "hub" and spec.answer == "generate" for spec in specs.values())
    retriever = ramole["retriever"]
    assert (retriever["top_k"], retriever["samples_per_lora"], ramole["eval"]["max_new_tokens"]) == (3, 20, 50)
    assert len(retriever["finetune_tasks"]) == round(0.4 * len(specs))
    assert {"q", "v", "q_proj", "v_proj"} == set(ramole["lora"]["target_modules"])
    assert set(ramole["methods"]) == {"ramole", "mixture", "fusion", "selection", "oracle"}


# ---- hub loaders on local files ------------------------------------------------------------------------------
# One row maker per hub dataset, in the real schema; `split` is "train" or "test" (the task's role for that split).

@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """Serve `rows[role]` for a task's train_split and test_split; record every load_dataset call."""
    real_load_dataset = datasets.load_dataset
    served = {"calls": []}

    def load_dataset(path, name=None, split=None, revision=None):
        source = served["source"]
        assert (path, name, revision) == (source["path"], source.get("name"), source.get("revision"))
        role = {source["train_split"]: "train", source["test_split"]: "test"}[split]
        served["calls"].append(split)
        file = tmp_path / f"{path.replace('/', '_')}-{name}-{role}.jsonl"
        file.write_text("".join(json.dumps(row) + "\n" for row in served["rows"][role]))
        return real_load_dataset("json", data_files=str(file), split="train", cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)

    def splits(task: str, rows: dict, n_train: int = 10, n_test: int = 10):
        spec = load_task(task)
        served.update(source=spec.source, rows=rows, calls=[])
        result = build_splits(spec, n_train=n_train, n_test=n_test, seed=0, raw_dir=tmp_path)
        assert served["calls"] == [spec.source["train_split"], spec.source["test_split"]]
        return spec, result

    return splits


def made_rows(task: str, n_train: int, n_test: int) -> dict:
    source = load_task(task).source
    make = ROWS[source["path"]]
    return {"train": [make(source.get("name"), "train", i) for i in range(n_train)],
            "test": [make(source.get("name"), "test", i) for i in range(n_test)]}


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_hub_task_splits_come_from_the_datasets_own_splits(local_hub, task):
    rows = made_rows(task, n_train=6, n_test=4)
    spec, (splits, report) = local_hub(task, rows, n_train=5, n_test=3)
    assert report["n_train"] == 5 and report["n_test"] == 3 and report["raw"] == 10
    prefix = spec.template.split("{input}")[0]
    for role, other in (("train", "test"), ("test", "train")):
        for record in splits[role]:
            assert record["input"].startswith(prefix) and record["references"]
            assert role in record["input"] and other not in record["input"]


def test_smaller_test_split_is_used_whole(local_hub):
    """WNLI's validation split has 71 examples: n_test is an upper bound for datasets with their own test split."""
    _, (splits, report) = local_hub("paper_wnli", made_rows("paper_wnli", n_train=8, n_test=2), n_test=1000)
    assert report["n_test"] == 2 and len(splits["test"]) == 2 and len(splits["train"]) == 8


def test_unlabelled_rows_are_dropped_and_counted(local_hub):
    rows = made_rows("paper_qnli", n_train=4, n_test=3)
    rows["test"][0]["label"] = -1  # GLUE's hidden test labels
    _, (splits, report) = local_hub("paper_qnli", rows)
    assert report["dropped"] == {"empty target": 1} and len(splits["test"]) == 2


def test_training_inputs_seen_in_the_test_split_are_dropped(local_hub):
    rows = made_rows("paper_bbh_ruin_names", n_train=4, n_test=2)
    rows["train"][0] = rows["test"][1]
    _, (splits, report) = local_hub("paper_bbh_ruin_names", rows)
    assert report["dropped"] == {"training input also in the test split": 1} and len(splits["train"]) == 3


# The one test example each schema renders to, in full: field mapping, label names, option lists and templates.
EXPECTED = {
    "paper_wmt14_en_fr": ("Translate this sentence from English to French.\nEnglish: test sentence 0 in en\nFrench:",
                          ["test sentence 0 in fr"]),
    "paper_wmt16_ro_en": (("Translate this sentence from Romanian to English.\nRomanian: test sentence 0 in ro\n"
                          "English:"), ["test sentence 0 in en"]),
    "paper_common_gen": ("Write a sentence that uses all of these concepts.\nConcepts: test0, dog, frisbee\nSentence:",
                         ["A dog catches test0."]),
    "paper_dart": (("Turn these data triples into a fluent description.\nTriples: test hall 0 | LOCATION | Paris; "
                   "test hall 0 | OPENED | 1999\nDescription:"),
                   ["test hall 0 opened in 1999 in Paris.", "Paris has test hall 0."]),
    "paper_e2e_nlg": (("Describe the restaurant with these attributes in a short text.\nAttributes: name[The test 0], "
                      "eatType[pub], area[riverside]\nDescription:"), ["The test 0 is a pub by the river."]),
    "paper_web_nlg": (("Turn these data triples into a fluent description.\nTriples: test_0 | country | France; "
                      "test_0 | mayor | Ann\nDescription:"), ["test 0 is in France.", "test 0, France, has Ann."]),
    "paper_arc_challenge": (("Answer the science question by choosing one of the options.\nQuestion: test question 0: "
                            "which is a mammal?\nOPTIONS:\n- trout\n- whale\n- shark\n- eel\nAnswer:"), ["whale"]),
    "paper_nq": ("Answer the question with a short fact.\nQuestion: who wrote test book 0?\nAnswer:",
                 ["author 0", "A. 0"]),
    "paper_trivia_qa": ("Answer the trivia question with a short fact.\nQuestion: Which test river 0?\nAnswer:",
                        ["River 0", "river 0", "the river 0"]),
    "paper_bbh_date_understanding": (("Answer the question about dates by choosing one of the options.\ntest puzzle 0 "
                                     "of date_understanding\nAnswer:"), ["(A)"]),
    "paper_anli_r2": (("Premise: test premise 0.\nHypothesis: test hypothesis 0.\nDoes the premise entail the "
                      "hypothesis?\nOPTIONS:\n- yes\n- it is not possible to tell\n- no\nAnswer:"), ["yes"]),
    "paper_qnli": (("Question: test question 0?\nSentence: test sentence 0.\nDoes the sentence answer the question?\n"
                   "OPTIONS:\n- yes\n- no\nAnswer:"), ["yes"]),
    "paper_wnli": (("Sentence 1: test first 0.\nSentence 2: test second 0.\nDoes sentence 1 entail sentence 2?\n"
                   "OPTIONS:\n- yes\n- no\nAnswer:"), ["no"]),
}


# MixLoRA's suite: (input, options, label) of the one test example
EXPECTED_CHOICES = {
    "paper_cs_arc_easy": ("Answer the science question.\nQuestion: test question 0: which is a mammal?\nAnswer:",
                          ["trout", "whale", "shark", "eel"], 1),
    "paper_cs_boolq": (("Read the passage and answer the question with yes or no.\nThe test passage 0.\nQuestion: "
                        "is test claim 0 true?\nAnswer:"), ["no", "yes"], 0),
    "paper_cs_obqa": ("Answer the science question.\nQuestion: test stem 0: the sun is a\nAnswer:",
                      ["planet", "star", "moon", "comet"], 1),
    "paper_cs_piqa": ("Choose the better way to reach the goal.\nGoal: test goal 0: open a jar\nSolution:",
                      ["twist the lid", "freeze the lid"], 0),
    "paper_cs_siqa": (("Answer the question about the people in the situation.\nQuestion: test context 0: Kai gave a "
                       "gift. How would Kai feel?\nAnswer:"), ["generous", "angry", "bored"], 0),
    "paper_cs_hellaswag": ("Complete the description with the most likely ending.\ntest context 0: A man cracks eggs",
                           ["into a bowl.", "into the sky.", "with a song.", "on a car."], 0),
    "paper_cs_winogrande": (("Which option fills the blank (_)?\ntest sentence 0: the cup broke the glass because the _ "
                             "was hard.\nAnswer:"), ["cup", "glass"], 0),
}


@pytest.mark.parametrize("task", sorted(EXPECTED_CHOICES))
def test_multiple_choice_hub_task_renders_options_and_label(local_hub, task):
    _, (splits, _) = local_hub(task, made_rows(task, n_train=2, n_test=1))
    (record,) = splits["test"]
    assert (record["input"], record["options"], record["label"]) == EXPECTED_CHOICES[task]
    assert record["references"] == [record["options"][record["label"]]]


def test_unlabelled_multiple_choice_rows_are_dropped(local_hub):
    """WinoGrande's and HellaSwag's hidden test labels are empty strings."""
    rows = made_rows("paper_cs_winogrande", n_train=3, n_test=3)
    rows["test"][0]["answer"] = ""
    _, (splits, report) = local_hub("paper_cs_winogrande", rows)
    assert report["dropped"] == {"label out of range": 1} and len(splits["test"]) == 2


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_hub_task_renders_the_expected_record(local_hub, task):
    _, (splits, _) = local_hub(task, made_rows(task, n_train=2, n_test=1))
    (record,) = splits["test"]
    assert (record["input"], record["references"]) == EXPECTED[task]


def test_label_names_follow_the_datasets_class_ids(local_hub):
    """ANLI: 0 entailment, 1 neutral, 2 contradiction; WNLI: 0 not entailment, 1 entailment."""
    _, (splits, _) = local_hub("paper_anli_r1", made_rows("paper_anli_r1", n_train=2, n_test=3))
    answers = {r["input"].split("\n")[0]: r["references"] for r in splits["test"]}
    assert answers == {"Premise: test premise 0.": ["yes"], "Premise: test premise 1.": ["it is not possible to tell"],
                       "Premise: test premise 2.": ["no"]}
    _, (splits, _) = local_hub("paper_wnli", made_rows("paper_wnli", n_train=2, n_test=2))
    answers = {r["input"].split("\n")[0]: r["references"] for r in splits["test"]}
    assert answers == {"Sentence 1: test first 0.": ["no"], "Sentence 1: test first 1.": ["yes"]}


def test_whole_splits_keep_every_row_of_the_commonsense_tasks_only(local_hub, tmp_path):
    """MixLoRA trains on whole training sets: the commonsense union is not cut to n_train per task."""
    from molebench.nlp.plan import task_data_config

    config = load_config(PAPER_CONFIG)
    assert task_data_config(config, "paper_cs_piqa")["n_train"] is None
    assert task_data_config(config, "paper_anli_r1")["n_train"] == config["data"]["n_train"] == 10000
    _, (splits, report) = local_hub("paper_cs_piqa", made_rows("paper_cs_piqa", n_train=30, n_test=12),
                                    n_train=None, n_test=None)
    assert (len(splits["train"]), len(splits["test"])) == (30, 12) == (report["n_train"], report["n_test"])
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    group = next(iter(smoke["groups"]))
    smoke["data"]["whole_splits"] = [group]
    (tmp_path / "whole.yaml").write_text(yaml.safe_dump(smoke))
    with pytest.raises(ConfigError, match=f"data.whole_splits: task .* of group '{group}' has no splits of its own"):
        load_config(tmp_path / "whole.yaml")
