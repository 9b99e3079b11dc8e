"""The task registry: every task YAML loads, splits are fixed and disjoint, broken records are counted."""

import json
import os
import re
from pathlib import Path

import pytest

from molebench.core import skills
from molebench.core.data import TaskSpec, build_splits, list_tasks, load_task
from molebench.core.generators import SCENE_VERBS, generate

TASKS = [t for t in list_tasks() if not t.startswith(skills.TASK_PREFIX)]  # the YAML files (skill tasks: test_skills)
GENERATOR_TASKS = [t for t in TASKS if load_task(t).source["kind"] == "generator"]
BIGBENCH_TASKS = [t for t in TASKS if load_task(t).source["kind"] == "bigbench"]
METRICS = {"exact_match", "bleu", "rouge1", "rouge2", "rougeL", "accuracy"}
# data/paper/README.md: a task's family must be one of the paper's slugs to match its Average rows
FAMILIES = {"translation", "struct_to_text", "closed_book_qa", "bbh", "nli", "commonsense", "smoke"}
RAW_DIR = Path(os.environ.get("MOLEBENCH_RAW_DIR", Path(__file__).resolve().parents[1] / "data" / "raw"))


def test_expected_tasks_exist():
    assert {"boolean_expressions", "multistep_arithmetic", "web_of_lies", "word_sorting", "object_counting",
            "dyck_languages", "smoke_reverse", "smoke_add", "smoke_upper", "smoke_parity_mc", "e2e_nlg", "webnlg_en",
            "common_gen", "qa_wikidata", "arc_science", "presuppositions_as_nli", "epistemic_reasoning", "winowhy",
            "vitaminc", "fever", "restaurant_to_text", "triples_to_text", "concepts_to_text"} <= set(TASKS)


def test_struct_to_text_references_state_every_input_value():
    """The generated struct-to-text tasks: every phrasing of an input says every value in it, and they differ."""
    for ex in generate("restaurant_to_text", 200, seed=0):
        values = dict(re.findall(r"(\w[\w ]*)\[([^\]]+)\]", ex["input"]))
        assert "name" in values and len(ex["references"]) == 2 and len(set(ex["references"])) == 2
        for ref in ex["references"]:
            assert all(v in ref for k, v in values.items() if k != "familyFriendly"), (values, ref)
            assert ("famil" in ref or "adults" in ref) == ("familyFriendly" in values)
    for ex in generate("triples_to_text", 200, seed=0):
        triples = [t.split(" | ") for t in ex["input"].split(" ; ")]
        assert len({s for s, _, _ in triples}) == 1 and len(ex["references"]) == min(len(triples), 2)
        for ref in ex["references"]:
            assert all(f"{s} ".replace("_", " ") in ref and o.replace("_", " ") in ref for s, _, o in triples)
    for ex in generate("concepts_to_text", 200, seed=0):
        concepts = ex["input"].split(", ")
        assert concepts == sorted(concepts) and len(concepts) in (3, 4)
        for ref in ex["references"]:
            words = set(re.findall(r"[a-z]+", ref.lower()))
            assert all(c in words or {SCENE_VERBS[c][0], SCENE_VERBS[c][1]} & words
                       for c in concepts if c in SCENE_VERBS or c in words), (concepts, ref)
            assert sum(c in words for c in concepts) >= len(concepts) - 1  # all but the inflected verb, verbatim


@pytest.mark.parametrize("name", TASKS)
def test_task_yaml_is_sensible(name):
    spec = load_task(name)
    assert spec.name == name and spec.family in FAMILIES
    assert spec.metrics and set(spec.metrics) <= METRICS
    # accuracy compares the chosen option with the correct one, so it needs options
    assert ("accuracy" in spec.metrics) == (spec.answer == "multiple_choice")
    # the answer follows the prompt after one space
    assert not spec.template.endswith((" ", "\n"))
    assert spec.max_new_tokens > 0 and spec.version >= 1 and spec.description


def test_unknown_task_names_known_tasks():
    with pytest.raises(KeyError, match="boolean_expressions"):
        load_task("no_such_task")


def test_template_needs_input_placeholder():
    with pytest.raises(ValueError, match="input"):
        TaskSpec(name="t", family="smoke", source={"kind": "jsonl"}, template="no placeholder")


@pytest.mark.parametrize("name", GENERATOR_TASKS)
def test_generator_task_splits(name, tmp_path):
    spec = load_task(name)
    splits, report = build_splits(spec, n_train=40, n_test=10, seed=0, raw_dir=tmp_path)
    assert len(splits["train"]) == 40 and len(splits["test"]) == 10
    assert report["n_train"] == 40 and report["n_test"] == 10 and report["dropped"] == {}
    again, _ = build_splits(spec, n_train=40, n_test=10, seed=0, raw_dir=tmp_path)
    assert again == splits
    other, _ = build_splits(spec, n_train=40, n_test=10, seed=1, raw_dir=tmp_path)
    assert other != splits
    train_inputs = {r["input"] for r in splits["train"]}
    assert not [r for r in splits["test"] if r["input"] in train_inputs]
    ids = [r["id"] for r in splits["train"] + splits["test"]]
    assert len(set(ids)) == len(ids)
    for r in splits["train"] + splits["test"]:
        assert r["input"].startswith(spec.template.split("{input}")[0])
        assert r["references"] and all(ref.strip() for ref in r["references"])
        if spec.answer == "multiple_choice":
            assert r["references"] == [r["options"][r["label"]]]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_broken_generation_records_are_dropped(tmp_path):
    good = [{"input": f"question {i}", "references": [f"answer {i}"]} for i in range(6)]
    bad = [{"input": "no answer", "references": [" "]}, {"input": "empty list", "references": []},
           {"input": "  ", "references": ["x"]}]
    path = _write_jsonl(tmp_path / "g.jsonl", good + bad)
    spec = TaskSpec(name="local", family="smoke", source={"kind": "jsonl", "path": path})
    splits, report = build_splits(spec, n_train=4, n_test=2, seed=0, raw_dir=tmp_path)
    assert report["raw"] == 9 and report["usable"] == 6
    assert report["dropped"] == {"empty target": 2, "empty input": 1}
    assert {r["input"] for r in splits["train"] + splits["test"]} == {ex["input"] for ex in good}


def test_broken_choice_records_are_dropped(tmp_path):
    good = [{"input": f"is {i} even?", "options": ["yes", "no"], "label": i % 2} for i in range(5)]
    bad = [{"input": "label too big", "options": ["yes", "no"], "label": 2},
           {"input": "label not an int", "options": ["yes", "no"], "label": "0"},
           {"input": "one option", "options": ["yes"], "label": 0}]
    path = _write_jsonl(tmp_path / "mc.jsonl", good + bad)
    spec = TaskSpec(name="local_mc", family="smoke", source={"kind": "jsonl", "path": path},
                    answer="multiple_choice", metrics=("accuracy",))
    splits, report = build_splits(spec, n_train=3, n_test=2, seed=0, raw_dir=tmp_path)
    assert report["dropped"] == {"label out of range": 2, "fewer than 2 options": 1}
    assert len(splits["train"]) == 3 and len(splits["test"]) == 2


def test_too_few_usable_examples_raises(tmp_path):
    rows = [{"input": "only one", "references": ["x"]}]
    path = _write_jsonl(tmp_path / "t.jsonl", rows)
    spec = TaskSpec(name="tiny", family="smoke", source={"kind": "jsonl", "path": path})
    with pytest.raises(ValueError, match="usable"):
        build_splits(spec, n_train=4, n_test=2, seed=0, raw_dir=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", BIGBENCH_TASKS)
def test_bigbench_task_splits(name):
    """Streams the task from the BIG-bench archive (set MOLEBENCH_RAW_DIR to the folder that holds it)."""
    if not (RAW_DIR / "bigbench-1.0.0.tar.gz").is_file():
        pytest.skip(f"no BIG-bench archive in {RAW_DIR}")
    _, report = build_splits(load_task(name), n_train=400, n_test=50, seed=0, raw_dir=RAW_DIR)
    assert report["n_test"] == 50 and report["n_train"] >= 200
    assert report["usable"] >= 0.95 * report["raw"]


@pytest.mark.parametrize("task", ["word_sorting", "skill_lists_first"])
def test_a_task_spec_goes_to_snakemake_as_plain_values_and_comes_back_equal(task):
    spec = load_task(task)
    plain = spec.to_dict()
    assert json.loads(json.dumps(plain)) == {**plain, "metrics": list(spec.metrics)}  # builtins only
    assert TaskSpec.from_dict(plain) == spec
