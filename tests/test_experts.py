"""Bring your own experts (issue 21): LoRAs from outside the DAG, composed through the config, and failures that name
the adapter and the fix before any training."""

import shutil

import pytest
import torch
import yaml

from molebench.config import load_config
from molebench.core import io
from molebench.core import stages as core_stages
from molebench.core.adapters import AdapterError, fetch
from molebench.core.composition import load_trained
from molebench.core.data import task_data
from molebench.core.errors import ConfigError
from molebench.core.models import load_base
from molebench.nlp import plan, stages
from tests.conftest import REPO, make_lora

TRAIN = {"steps": 2, "batch_size": 4, "lr": 1e-3, "max_input_tokens": 48, "max_target_tokens": 12}
EVAL = {"batch_size": 4, "max_input_tokens": 48}
SCORED = ["smoke_parity_mc", "smoke_add"]  # the smoke config's mc_from_gen group


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The smoke base model, the scored tasks' data, a LoRA written by the DAG's train_lora stage (rank 2, attention)
    and one written by plain PEFT code (rank 4, FFN), and a jsonl file of training records for the latter."""
    root = tmp_path_factory.mktemp("experts")
    smoke = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    core_stages.base_model(smoke["model"], str(root / "base"))
    for task in SCORED:
        task_data(task, {"n_train": 16, "n_test": 4, "split_seed": 0, "raw_dir": str(root)},
                              str(root / "data" / task))
    core_stages.train_lora(str(root / "base"), "smoke_add", str(root / "data/smoke_add"),
                           {"r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]}, TRAIN, 1,
                           str(root / "dag_lora"))
    make_lora(root / "plain_lora", seed=3, r=4, targets=["up_proj", "down_proj"],
              base=lambda seed: load_base(root / "base")[0])
    io.write_jsonl(root / "plain.jsonl", io.read_jsonl(root / "data/smoke_parity_mc/train.jsonl"))
    return root


def smoke_config(world, tmp_path, experts: dict, **changes) -> dict:
    """config/smoke.yaml with `experts` composed into group mc_from_gen (MoLE Table 8's group), loaded and checked."""
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["experts"] = experts
    config["compose_from"] = {"mc_from_gen": list(experts)}
    for key, value in changes.items():  # sections are added to the smoke config's
        config[key] = {**config.get(key, {}), **value}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return load_config(tmp_path / "config.yaml")


def both(world) -> dict:
    return {"dag": {"path": str(world / "dag_lora"), "task": "smoke_add"},
            "plain": {"path": str(world / "plain_lora"), "data": str(world / "plain.jsonl")}}


def test_external_experts_compose_train_and_score(world, tmp_path):
    config = smoke_config(world, tmp_path, both(world))
    assert plan.lora_names(config, "mole", "mc_from_gen") == ["dag", "plain"]
    assert plan.adapter_dirs(config, "mole", "mc_from_gen", 1) == [str(world / "dag_lora"), str(world / "plain_lora")]
    assert plan.data_dirs(config, plan.group_tasks(config, "mole", "mc_from_gen")) == [
        "results/smoke/data/smoke_add", str(world / "plain.jsonl")]
    chains = [c for c in plan.job_chains(config) if "mc_from_gen-seed" in c[-1][1]]  # compose and evaluate jobs
    assert chains and not any(rule == "train_lora" for c in chains for rule, _ in c)  # no job trains an external one
    loras = {"dag": str(world / "dag_lora"), "plain": str(world / "plain_lora")}
    data = [str(world / "data/smoke_add"), str(world / "plain.jsonl")]
    tested = [str(world / "data" / t) for t in SCORED]
    # mixed ranks (2, 4) and targets (attention, FFN): output and weight space and MoLE's gates take them
    for variant in ({"method": "nla", "options": {"space": "weight"}}, {"method": "mole", "train": {"steps": 2}}):
        method_dir = None
        if variant["method"] == "mole":
            method_dir = str(tmp_path / "mole")
            stages.compose("mole", variant, str(world / "base"), loras, data, TRAIN, 1, method_dir)
            assert io.read_json(tmp_path / "mole/run.json")["train_info"]["records"] == 32  # 16 task + 16 jsonl
            assert io.read_json(tmp_path / "mole/loras.json") == loras  # the gates' folder names its LoRAs, in order
            method, model, _ = load_trained(method_dir, world / "base")  # rebuilt from the folder alone
            assert method.name == "mole" and len(model.mole_gates) == 4  # a gate per attention and FFN sub-layer
        out = tmp_path / variant["method"]
        stages.evaluate("v", variant, "mc_from_gen", SCORED, str(world / "base"), loras, method_dir, tested, EVAL, 1,
                        str(out / "metrics"))
        recorded = io.read_json(out / "metrics/smoke_add.json")["run_info"]["config"]
        assert dict(zip(recorded["loras"], recorded["adapters"], strict=True)) == loras
        assert len(io.read_jsonl(out / "metrics/smoke_parity_mc.predictions.jsonl")) == 4


def test_mixed_ranks_refused_at_parse_time_for_methods_that_sum_factors(world, tmp_path):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    tables = {"t": {"title": "t", "groups": ["mc_from_gen"], "variants": ["lorahub"]}}
    with pytest.raises(ConfigError, match=r"lorahub.*one rank; got ranks dag: 2, plain: 4.*nla, cat"):
        smoke_config(world, tmp_path, both(world), tables={**config["tables"], **tables})


def test_missing_data_source_fails_before_any_job_naming_the_expert_and_fix(world, tmp_path):
    experts = both(world)
    del experts["plain"]["data"]  # MoLE (table8) trains on every composed LoRA's data
    with pytest.raises(ConfigError, match=r"experts.plain: variants.mole \(mole\) trains on the data .* add `task:`"):
        smoke_config(world, tmp_path, experts)
    experts["plain"]["data"] = str(tmp_path / "absent.jsonl")
    with pytest.raises(ConfigError, match=r"experts.plain.data: no file .*absent.jsonl"):
        smoke_config(world, tmp_path, experts)
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "input": "x", "references": ["y"]}\n{"id": 2, "input": "x"}\n')
    experts["plain"]["data"] = str(tmp_path / "bad.jsonl")
    with pytest.raises(ConfigError, match=r"experts.plain.data: .*bad.jsonl line 2 is not a record"):
        smoke_config(world, tmp_path, experts)


def test_pickle_adapter_fails_at_parse_time_naming_the_folder_and_fix(world, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(world / "plain_lora", pickled)
    from safetensors.torch import load_file

    torch.save(load_file(pickled / "adapter_model.safetensors"), pickled / "adapter_model.bin")
    (pickled / "adapter_model.safetensors").unlink()
    experts = {**both(world), "plain": {"path": str(pickled), "data": str(world / "plain.jsonl")}}
    with pytest.raises(ConfigError, match=rf"experts.plain: {pickled}: .*pickle file adapter_model.bin.*convert it"):
        smoke_config(world, tmp_path, experts)
    (pickled / "adapter_model.safetensors").write_bytes(b"")
    (pickled / "adapter_model.bin").unlink()
    (pickled / "modeling.py").write_text("import os\n")
    with pytest.raises(ConfigError, match="ships code .modeling.py.; molebench runs no remote code"):
        smoke_config(world, tmp_path, experts)


def test_lora_of_another_base_fails_before_any_training(world, tmp_path):
    other = make_lora(tmp_path / "other", seed=1)  # tests.conftest's tiny LLaMA: hidden size 32, not the smoke 64
    loras = {"dag": str(world / "dag_lora"), "other": str(other)}
    with pytest.raises(AdapterError, match=rf"{other}: .* another base model .*use LoRAs of this base model"):
        stages.compose("mole", {"method": "mole"}, str(world / "base"), loras, [str(world / "data/smoke_add")] * 2,
                       TRAIN, 1, str(tmp_path / "mole"))
    assert not (tmp_path / "mole").exists() and not (tmp_path / ".mole.checkpoint").exists()


def test_hub_experts_are_pinned_and_fetched_or_refused_offline(world, tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    unpinned = {**both(world), "hub": {"hub": "someone/lora", "task": "smoke_add"}}
    with pytest.raises(ConfigError, match="experts.hub: hub adapter 'someone/lora' is not pinned; add `revision:`"):
        smoke_config(world, tmp_path, unpinned)
    config = smoke_config(world, tmp_path, {**both(world), "hub": {**unpinned["hub"], "revision": "abc123"}})
    fetched = "results/smoke/experts/hub/abc123"
    assert plan.adapter_dirs(config, "nla-output", "mc_from_gen", 1)[-1] == fetched
    assert [("base_model", "base"), ("fetch_expert", "hub-abc123"), ("evaluate", "mc_from_gen-seed1")] in \
        plan.job_chains(config)

    def download(repo_id, revision, local_dir, allow_patterns):  # the hub, as a local copy
        assert (repo_id, revision) == ("someone/lora", "abc123")
        shutil.copytree(world / "plain_lora", local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    assert fetch("someone/lora", "abc123", tmp_path / "fetched") == tmp_path / "fetched"

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(AdapterError, match=r"someone/lora@abc123 cannot be fetched offline .*`path:`"):
        fetch("someone/lora", "abc123", tmp_path / "again")


@pytest.mark.parametrize("variant", [{"method": "nla", "options": {"space": "output"}},
                                     {"method": "nla", "options": {"space": "weight"}},
                                     {"method": "nla", "options": {"space": "factor"}},
                                     *({"method": m} for m in ("cat", "svd", "peft-linear", "ties", "dare-ties",
                                                               "magnitude-prune")),
                                     {"method": "lorahub", "options": {"steps": 12, "n_examples": 4}},
                                     {"method": "pems", "options": {"n_validation": 4}}])
def test_a_composition_that_is_a_lora_loads_with_plain_peft_and_gives_the_same_logits(world, variant, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    from molebench.core import method as methods
    from molebench.core.composition import load_composition
    from molebench.core.training import seed_everything

    cls = methods.get(variant["method"])
    other = make_lora(tmp_path / "plain2", seed=4, r=4, targets=["q_proj", "up_proj"],
                      base=lambda seed: load_base(world / "base")[0])
    loras = {"plain": str(world / "plain_lora"), "plain2": str(other)}  # rank 4 both, targets overlapping in part
    if cls.equal_ranks(cls.config_class.from_dict(variant.get("options", {}))) is False:
        loras["dag"] = str(world / "dag_lora")  # rank 2: mixed ranks where the method allows them
    base, method_dir = str(world / "base"), None
    if cls.trainable:
        method_dir = str(tmp_path / "method")
        stages.compose("v", variant, base, loras, [str(world / "data/smoke_add")] * len(loras), TRAIN, 1, method_dir)
        state = load_file(f"{method_dir}/state.safetensors")
        if not state["factor_weights.a"].any():  # on random LoRAs LoraHub's search may keep w = 0 (the base model)
            save_file({k: torch.tensor([0.7, -0.4]) for k in state}, f"{method_dir}/state.safetensors")
        _, ours, _ = load_trained(method_dir, base)
    else:
        seed_everything(1)  # as the evaluate stage does: DARE drops at random
        _, ours, _, _ = load_composition(variant["method"], variant.get("options", {}), base, loras)
    stages.evaluate("v", variant, "g", ["smoke_add"], base, loras, method_dir, [str(world / "data/smoke_add")], EVAL,
                    1, str(tmp_path / "metrics"))
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(tmp_path / "metrics/adapter"))
    ids = torch.randint(3, 500, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = ours(input_ids=ids).logits, plain.eval()(input_ids=ids).logits
        assert (want - AutoModelForCausalLM.from_pretrained(base)(input_ids=ids).logits).abs().max() > 1e-4
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def parity_task(world, folder) -> dict:
    """An lm-eval YAML task over the smoke parity task's test split, in a local folder; the config's lm_eval entry."""
    folder.mkdir(exist_ok=True)
    (folder / "parity.yaml").write_text(
        "task: molebench_parity\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {world / 'data/smoke_parity_mc/test.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{input}}"\ndoc_to_choice: "{{options}}"\ndoc_to_target: label\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n")
    return {"include_path": str(folder), "registry": False,
            "tasks": {"molebench_parity": {"metrics": ["acc"], "family": "lm-eval"}}}


def test_lm_eval_local_task_scores_a_composition_as_the_project_scorer_does(world, tmp_path):
    harness = parity_task(world, tmp_path / "tasks")
    loras = {"dag": str(world / "dag_lora"), "plain": str(world / "plain_lora")}
    out = tmp_path / "metrics"
    stages.evaluate("nla", {"method": "nla"}, "g", ["molebench_parity", "smoke_parity_mc"], str(world / "base"), loras,
                    None, [str(world / "data/smoke_parity_mc")], EVAL, 1, str(out), harness)
    theirs, ours = io.read_json(out / "molebench_parity.json"), io.read_json(out / "smoke_parity_mc.json")
    assert theirs["metrics"] == {"acc": ours["metrics"]["accuracy"]} and theirs["n"] == ours["n"] == 4
    assert theirs["protocol"]["lm_eval_results"]["acc,none"] * 100 == pytest.approx(theirs["metrics"]["acc"])
    rows = {name: io.read_jsonl(out / f"{name}.predictions.jsonl") for name in ("molebench_parity", "smoke_parity_mc")}
    assert [(r["id"], r["scores"]["acc"]) for r in rows["molebench_parity"]] == [
        (r["id"], r["scores"]["accuracy"]) for r in rows["smoke_parity_mc"]]  # example by example: paired statistics


def test_lm_eval_tasks_in_config_need_loras_to_compose_and_methods_that_fit_them(world, tmp_path):
    harness = parity_task(world, tmp_path / "tasks")
    groups, compose = {"harness": ["molebench_parity"]}, {"harness": list(both(world))}
    tables = {"h": {"title": "h", "groups": ["harness"], "variants": ["zero-shot", "nla-output", "mole"]}}
    config = smoke_config(world, tmp_path, both(world), lm_eval=harness, groups=groups, compose_from=compose,
                          tables=tables)
    assert plan.scored_data(config, ["molebench_parity", "smoke_add"]) == ["results/smoke/data/smoke_add"]
    assert plan.task_spec(config, "molebench_parity").metrics == ("acc",)
    for variant, message in (("few-shot", r"rewrites prompts, and lm-eval builds the prompts .*use lm_eval.num_fewshot"),
                             ("single", r"scores each task with that task's own LoRA, and lm-eval tasks")):
        with pytest.raises(ConfigError, match=message):
            smoke_config(world, tmp_path, both(world), lm_eval=harness, groups=groups, compose_from=compose,
                         tables={"h": {**tables["h"], "variants": [variant]}})
    with pytest.raises(ConfigError, match=r"groups.alone: lm-eval task 'molebench_parity' has no training data .*"
                                          r"compose_from.alone"):
        smoke_config(world, tmp_path, both(world), lm_eval=harness, groups={"alone": ["molebench_parity"]})


def test_lm_eval_generation_task_scores_mole_with_gates_read_from_the_prompt(world, tmp_path):
    """A generate_until task through the HFLM on a trained MoLE composition: generation opens one prompt context per
    call (the gates decide from the prompt and hold while decoding), and the per-sample scores land per example."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks/add.yaml").write_text(
        "task: molebench_add\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {world / 'data/smoke_add/test.jsonl'}\n"
        "test_split: test\noutput_type: generate_until\n"
        'doc_to_text: "{{input}}"\ndoc_to_target: "{{references[0]}}"\n'
        "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 6\n  do_sample: false\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n")
    harness = {"include_path": str(tmp_path / "tasks"), "registry": False,
               "tasks": {"molebench_add": {"metrics": ["exact_match"], "family": "lm-eval"}}}
    loras = {"dag": str(world / "dag_lora"), "plain": str(world / "plain_lora")}
    variant = {"method": "mole", "train": {"steps": 1}}
    stages.compose("mole", variant, str(world / "base"), loras, [str(world / "data/smoke_add")] * 2, TRAIN, 1,
                   str(tmp_path / "mole"))
    stages.evaluate("mole", variant, "g", ["molebench_add"], str(world / "base"), loras, str(tmp_path / "mole"), [],
                    EVAL, 1, str(tmp_path / "metrics"), harness)
    rows = io.read_jsonl(tmp_path / "metrics/molebench_add.predictions.jsonl")
    assert [r["id"] for r in rows] == [f"smoke_add-{i}" for i in range(4)] and [r["references"] for r in rows] == [
        r["references"] for r in io.read_jsonl(world / "data/smoke_add/test.jsonl")]
    assert all(r["scores"]["exact_match"] in (0.0, 100.0) and "\n" not in r["prediction"] for r in rows)
