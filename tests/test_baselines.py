"""The baselines on tiny models: linear arithmetic, PEFT merges, LoraHub (with parity against the `lorahub`
package), PEMs, few-shot, multitask, mixed LoRA libraries, and cost accounting."""

import json

import pytest
import torch

from molebench.core import composition
from molebench.core import method as methods
from molebench.core.accounting import cost
from molebench.core.adapters import AdapterError, load_expert
from molebench.core.bank import BankedLinear
from molebench.core.training import TrainConfig, Trainer
from tests.conftest import CharTokenizer, build, logits, make_lora, manual_sum, tiny_llama, train_records

MERGES = ["peft-linear", "cat", "svd", "ties", "dare-linear", "dare-ties", "magnitude-prune"]
BASELINES = ["lorahub", "pems", "linear", "nla", *MERGES, "zero-shot", "few-shot", "single", "multitask"]


@pytest.fixture
def equal_rank_dirs(tmp_path):
    return [make_lora(tmp_path / f"eq{i}", seed=20 + i) for i in range(3)]


def trainer(tmp_path, seed=1):
    return Trainer(TrainConfig(steps=3, batch_size=4, lr=0.05), seed, tmp_path / f"log{seed}.jsonl")


def test_registry_lists_every_baseline():
    assert set(BASELINES) <= set(methods.available())


def test_linear_is_the_plain_sum_in_every_space(equal_rank_dirs, inputs):
    ids, mask = inputs
    want = manual_sum(equal_rank_dirs, [1.0] * 3, ids, mask)
    for space in ("output", "weight"):
        _, model = build("linear", equal_rank_dirs, space=space)
        torch.testing.assert_close(logits(model, ids, mask), want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MERGES)
def test_peft_merges_compose_equal_ranks(equal_rank_dirs, inputs, name):
    ids, mask = inputs
    _, model = build(name, equal_rank_dirs)
    out = logits(model, ids, mask)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, logits(tiny_llama(), ids, mask))  # the merge changed the model


def test_dare_is_random_but_seeded(equal_rank_dirs, inputs):
    ids, mask = inputs
    cls, outs = methods.get("dare-ties"), []
    for seed in (1, 1, 2):
        base = tiny_llama()  # seeds torch itself, so the run's seed is set after it, as the DAG's jobs do
        experts = [load_expert(d, base) for d in equal_rank_dirs]
        torch.manual_seed(seed)
        outs.append(logits(cls().build(base, experts), ids, mask))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_cat_at_one_over_n_equals_nla(equal_rank_dirs, inputs):
    ids, mask = inputs
    _, cat = build("cat", equal_rank_dirs)
    _, nla = build("nla", equal_rank_dirs, space="output")
    torch.testing.assert_close(logits(cat, ids, mask), logits(nla, ids, mask), atol=1e-4, rtol=1e-4)


def test_mixed_ranks_composed_where_possible_and_rejected_clearly_elsewhere(lora_dirs, inputs):
    ids, mask = inputs  # lora_dirs have ranks 4, 4, 2
    for name in ("cat", "svd", "nla"):
        assert torch.isfinite(logits(build(name, lora_dirs)[1], ids, mask)).all()
    for name in ("ties", "peft-linear", "lorahub", "pems"):  # the DAG builds through composition.build, which asks the flag
        base = tiny_llama()
        with pytest.raises(AdapterError, match="one rank; got ranks lora0: 4, lora1: 4, lora2: 2"):
            composition.build(name, {}, base, [load_expert(d, base) for d in lora_dirs])


def test_mixed_target_modules_compose_in_output_and_weight_space(tmp_path, inputs):
    ids, mask = inputs
    dirs = [make_lora(tmp_path / "attn", seed=1, targets=["q_proj", "v_proj"]),
            make_lora(tmp_path / "ffn", seed=2, targets=["up_proj", "down_proj"])]
    want = manual_sum(dirs, [0.5, 0.5], ids, mask)
    for name, options in (("nla", {"space": "output"}), ("nla", {"space": "weight"})):
        torch.testing.assert_close(logits(build(name, dirs, **options)[1], ids, mask), want, atol=1e-4, rtol=1e-4)
    for name in ("ties", "svd", "lorahub", "pems"):  # factor sums and PEFT merges take the union of the targets
        assert torch.isfinite(logits(build(name, dirs)[1], ids, mask)).all()
    with pytest.raises(AdapterError, match="differ"):
        build("multitask", dirs)  # copies one LoRA config, so the group's LoRAs must share it


def factor_reference(dirs, weights_a, weights_b, ids, mask):
    """(sum wb_i s B_i)(sum wa_i A_i) x added at every adapted linear, by hand."""
    base = tiny_llama()
    experts = [load_expert(d, base) for d in dirs]
    for name, module in base.named_modules():
        if name in experts[0].factors:
            a = sum(wa * e.factors[name][0] for wa, e in zip(weights_a, experts))
            b = sum(wb * e.factors[name][2] * e.factors[name][1] for wb, e in zip(weights_b, experts))
            module.register_forward_hook(lambda m, args, out, a=a, b=b: out + args[0] @ a.T @ b.T)
    return logits(base, ids, mask)


def test_lorahub_sums_factors_and_merges_to_the_same_model(equal_rank_dirs, inputs, tmp_path):
    ids, mask = inputs
    method, model = build("lorahub", equal_rank_dirs)
    w = [0.7, -0.4, 1.2]
    model.factor_weights.a.copy_(torch.tensor(w))
    model.factor_weights.b.copy_(torch.tensor(w))
    want = factor_reference(equal_rank_dirs, w, w, ids, mask)
    torch.testing.assert_close(logits(model, ids, mask), want, atol=1e-4, rtol=1e-4)
    method.save(model, tmp_path / "state")
    fresh_method, fresh = build("lorahub", equal_rank_dirs)
    fresh_method.load(fresh, tmp_path / "state")
    assert not any(isinstance(m, BankedLinear) for m in fresh.modules())  # merged: no cost per token
    torch.testing.assert_close(logits(fresh, ids, mask), want, atol=1e-4, rtol=1e-4)


def test_lorahub_search_is_seeded_and_improves_on_zero(equal_rank_dirs, tmp_path):
    infos = []
    for _ in range(2):
        method, model = build("lorahub", equal_rank_dirs, steps=12, n_examples=4)
        infos.append(method.fit(model, CharTokenizer(), train_records(), trainer(tmp_path)))
    assert infos[0]["weights"] == infos[1]["weights"] and infos[0]["examples"] == infos[1]["examples"]
    curve = [json.loads(line)["loss"] for line in (tmp_path / "log1.jsonl").read_text().splitlines()]
    assert len(curve) == 12 and infos[0]["objective"] <= curve[0] + 1e-6  # curve[0] is w = 0, the start


def test_pems_negation_flips_the_update_and_lambda_comes_from_the_grid(equal_rank_dirs, inputs, tmp_path):
    ids, mask = inputs
    method, model = build("pems", equal_rank_dirs[:1], negate=[equal_rank_dirs[0].name])
    method.set_lambda(model, 1.0)
    want = manual_sum(equal_rank_dirs[:1], [-1.0], ids, mask)
    torch.testing.assert_close(logits(model, ids, mask), want, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="not LoRAs of this group"):
        build("pems", equal_rank_dirs, negate=["nope"])
    method, model = build("pems", equal_rank_dirs, scales=[0.5, 3.0], n_validation=6)
    info = method.fit(model, CharTokenizer(), train_records(), trainer(tmp_path))
    assert info["lambda"] in (0.5 / 3, 1.0) and len(info["validation"]) == 2
    assert model.factor_weights.a[0].item() == pytest.approx(info["lambda"])


def test_few_shot_prefixes_seeded_examples_from_the_task():
    method = methods.get("few-shot")(methods.get("few-shot").config_class(shots=2))
    train = train_records()
    tests = [{"id": "t", "input": "q?", "references": ["a"]}]
    first, again, other = (method.prompts(tests, train, s)[0]["input"] for s in (1, 1, 2))
    assert first == again and first != other and first.endswith("\n\nq?")
    assert first.count("\n\n") == 2 and any(f"{r['input']} {r['references'][0]}" in first for r in train)
    with pytest.raises(ValueError, match="shots"):
        methods.get("few-shot").config_class(shots=0)


def test_multitask_trains_one_lora_on_the_union_and_saves_a_peft_folder(equal_rank_dirs, inputs, tmp_path):
    ids, mask = inputs
    method, model = build("multitask", equal_rank_dirs)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    info = method.fit(model, CharTokenizer(), train_records(), trainer(tmp_path))
    assert info["trainable_params"] == sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    method.save(model, tmp_path / "mt")
    assert load_expert(tmp_path / "mt", tiny_llama()).rank == 4  # a standard adapter, same rank as the group's
    want = logits(model, ids, mask)
    fresh_method, fresh = build("multitask", equal_rank_dirs)
    fresh_method.load(fresh, tmp_path / "mt")
    torch.testing.assert_close(logits(fresh, ids, mask), want, atol=1e-4, rtol=1e-4)
    assert not any("lora_" in n for n, _ in fresh.named_parameters())  # merged for scoring


def test_multitask_active_layers_keep_the_lora_only_in_their_depth_range(equal_rank_dirs, tmp_path):
    method, model = build("multitask", equal_rank_dirs)
    method.fit(model, CharTokenizer(), train_records(), trainer(tmp_path))
    method.save(model, tmp_path / "mt")
    base = dict(tiny_llama().named_parameters())
    blocks = tiny_llama().config.num_hidden_layers

    def changed_blocks(active_layers):
        scored_method, scored = build("multitask", equal_rank_dirs, active_layers=active_layers)
        scored_method.load(scored, tmp_path / "mt")
        names = {n.removeprefix("base_model.model."): p for n, p in scored.named_parameters()}
        return {int(n.split(".")[2]) for n, p in names.items() if not torch.equal(p, base[n])}

    assert changed_blocks(None) == set(range(blocks))
    assert changed_blocks([0, 50]) == set(range(blocks // 2))
    assert changed_blocks([50, 100]) == set(range(blocks // 2, blocks))
    with pytest.raises(ValueError, match="selects no block"):
        changed_blocks([10, 20])
    with pytest.raises(ValueError, match="0 <= lo < hi <= 100"):
        build("multitask", equal_rank_dirs, active_layers=[60, 40])


def test_cost_accounting(equal_rank_dirs):
    base_params = sum(p.numel() for p in tiny_llama().parameters())
    _, nla = build("nla", equal_rank_dirs, space="output")
    bank = sum(e.rank * (m.in_features + m.out_features)
               for e in [load_expert(d, tiny_llama()) for d in equal_rank_dirs]
               for m in [tiny_llama().get_submodule(n) for n in e.factors])
    got = cost(nla, base_params, 0)
    assert got["extra_params"] == bank and got["extra_flops_per_token"] == 2 * bank
    merged = cost(build("cat", equal_rank_dirs)[1], base_params, 0)
    assert merged["extra_params"] == 0 and merged["extra_flops_per_token"] == 0
    method, mole = build("mole", equal_rank_dirs)
    gates = sum(p.numel() for p in method.trained_parameters(mole).values())
    assert cost(mole, base_params, gates)["extra_params"] == bank + gates


def test_lorahub_objective_matches_the_official_package(tmp_path):
    """Our objective (functional factor sum) against `lorahub.algorithm.get_score` (state-dict copy into PEFT)."""
    import lorahub.algorithm as lorahub  # installed by `make setup` (Makefile), without its unrelated dependencies
    from molebench.methods.lorahub import encode_batch
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.utils import load_peft_weights

    from molebench.core import stages as core_stages
    from molebench.core.models import load_base

    core_stages.base_model({"source": "tiny-random", "arch": "t5", "hidden_size": 32, "layers": 2, "heads": 2,
                         "kv_heads": 1, "vocab_size": 400}, str(tmp_path / "base"))
    dirs = []
    for i in range(3):
        base, _ = load_base(tmp_path / "base")
        torch.manual_seed(i)
        peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q", "v", "wo"],
                                                     init_lora_weights=False))
        peft_model.save_pretrained(tmp_path / f"lora{i}")
        dirs.append(tmp_path / f"lora{i}")
    inputs = ["add 3 and 4", "reverse abc", "upper xyz", "add 1 and 1", "reverse hello"]
    outputs = ["7", "cba", "XYZ", "2", "olleh"]
    weights = [0.5, -1.2, 0.9]

    base, tokenizer = load_base(tmp_path / "base")
    official_model = PeftModel.from_pretrained(base, str(dirs[0])).eval()
    cache = {str(d): load_peft_weights(str(d)) for d in dirs}
    dataset = lorahub.load_dataset(inputs, outputs, tokenizer)
    official = lorahub.get_score(weights, official_model, cache, dataset, None, lorahub.default_get_loss,
                                 lorahub.default_l1_regularization)

    base, tokenizer = load_base(tmp_path / "base")
    method = methods.get("lorahub")()
    model = method.build(base, [load_expert(d, base) for d in dirs])
    records = [{"input": i, "references": [o]} for i, o in zip(inputs, outputs)]
    batch = encode_batch(tokenizer, model, records, trainer(tmp_path))
    ours = method.objective(model, batch, len(records), weights)
    assert ours == pytest.approx(official, rel=1e-5)
