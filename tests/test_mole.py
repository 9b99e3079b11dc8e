"""MoLE on a tiny LLaMA (and a tiny T5) with three random LoRAs: granularities, gate inputs, temperature, masking,
what training touches, gate statistics, save/load and determinism."""

import json
import math

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from molebench.core import method as methods
from molebench.core.models import prompt_positions
from molebench.core.training import TrainConfig, Trainer
from tests.conftest import CharTokenizer, build, logits, make_lora, manual_sum, train_records

T5_TARGETS = ["q", "k", "v", "o", "wi_0", "wi_1", "wo"]


def tiny_t5(seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(vocab_size=97, d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4,
                      feed_forward_proj="gated-gelu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=2,
                      tie_word_embeddings=False)
    return T5ForConditionalGeneration(config).eval()


def gate_weights(model, ids, mask) -> dict:
    """Per-sample weights of every gate for one forward: {gate: (batch, N)}."""
    with torch.no_grad(), prompt_positions(mask) as ctx:
        model(input_ids=ids, attention_mask=mask)
    return {key: w for (tag, key), w in ctx.cache.items() if tag == "mole"}


def fit(lora_dirs, seed, tmp_path, train=None, **options):
    method, model = build("mole", lora_dirs, **options)
    trainer = Trainer(TrainConfig(steps=3, batch_size=4, lr=0.05, **(train or {})), seed, tmp_path / f"log{seed}.jsonl")
    info = method.fit(model, CharTokenizer(), train_records(), trainer)
    return method, model, info


# ---- granularity ---------------------------------------------------------------------------------------------

def test_registry_lists_granularity_presets():
    available = methods.available()
    presets = {"mole": "layer", "m-mole": "matrix", "l-mole": "layer", "b-mole": "block", "n-mole": "network"}
    for name, granularity in presets.items():
        assert available[name].config_class().granularity == granularity


@pytest.mark.parametrize("name,gates", [
    ("m-mole", 14), ("l-mole", 4), ("b-mole", 2), ("n-mole", 1)])
def test_granularity_gate_count_llama(lora_dirs, inputs, name, gates):
    method, model = build(name, lora_dirs)
    assert len(model.mole_gates) == gates
    logits(model, *inputs)
    assert len(method.gate_report(model)["gates"]) == gates  # every gate ran


def test_layer_gates_are_attention_and_ffn(lora_dirs, inputs):
    method, model = build("mole", lora_dirs)
    logits(model, *inputs)
    assert set(method.gate_report(model)["gates"]) == {
        "model.layers.0.self_attn", "model.layers.0.mlp", "model.layers.1.self_attn", "model.layers.1.mlp"}


@pytest.mark.parametrize("granularity,gates", [("matrix", 36), ("layer", 10), ("block", 4), ("network", 1)])
def test_granularity_gate_count_t5(tmp_path, granularity, gates):
    dirs = [make_lora(tmp_path / f"t5lora{i}", seed=i, targets=T5_TARGETS, base=tiny_t5) for i in range(3)]
    # T5 layers: encoder self-attention and FFN; decoder self-attention, cross-attention and FFN (2 blocks each)
    method, model = build("mole", dirs, base=tiny_t5, granularity=granularity)
    assert len(model.mole_gates) == gates
    ids = torch.randint(3, 97, (2, 6))
    with torch.no_grad(), prompt_positions(torch.ones_like(ids)):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), decoder_input_ids=torch.zeros(2, 3, dtype=torch.long))
    assert len(method.gate_report(model)["gates"]) == gates


@pytest.mark.parametrize("granularity", ["layer", "block"])
def test_granularity_the_module_names_do_not_support_fails_at_build(tmp_path, granularity):
    head_lora = make_lora(tmp_path / "head", seed=1, targets=["lm_head"])  # lm_head sits in no block or layer
    with pytest.raises(ValueError, match=f"granularity '{granularity}' needs module names.*'lm_head'"):
        build("mole", [head_lora, head_lora], granularity=granularity)


# ---- gate inputs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [{"gate_input": "pooled"}, {"gate_input": "paper", "gate_length": 8},
                                     {"gate_input": "hidden", "gate_length": 8}])
def test_gate_inputs_give_weights_summing_to_one(lora_dirs, inputs, options):
    _, model = build("mole", lora_dirs, **options)
    weights = gate_weights(model, *inputs)
    assert len(weights) == 4
    for w in weights.values():
        assert w.shape == (2, 3)
        torch.testing.assert_close(w.sum(-1), torch.ones(2))


@pytest.fixture
def t5_loras(tmp_path):
    return [make_lora(tmp_path / f"t5lora{i}", seed=i, targets=["q", "v"], base=tiny_t5) for i in range(3)]


@pytest.mark.parametrize("options", [{"gate_input": "pooled"}, {"gate_input": "paper", "gate_length": 8},
                                     {"gate_input": "hidden", "gate_length": 8}])
def test_gate_inputs_run_on_t5_in_training_and_generation(t5_loras, tmp_path, options):
    """FLAN-T5 is the paper's NLP base: every gate input must train and generate on an encoder-decoder (the decoder
    gates read the decoder start token only)."""
    method, model = build("mole", t5_loras, base=tiny_t5, **options)
    trainer = Trainer(TrainConfig(steps=2, batch_size=4, lr=0.05, max_input_tokens=8), 1, tmp_path / "log.jsonl")
    info = method.fit(model, CharTokenizer(), train_records(), trainer)
    assert math.isfinite(info["final_loss"])
    ids = torch.randint(3, 97, (2, 6))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    weights = gate_weights_t5(model, ids, mask)
    assert {key.split(".")[0] for key in weights} == {"encoder", "decoder"}
    for w in weights.values():
        torch.testing.assert_close(w.sum(-1), torch.ones(2))
    with torch.no_grad(), prompt_positions(mask):
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False)
    assert out.shape[0] == 2 and method.gate_report(model)["source"] == "inference"


def gate_weights_t5(model, ids, mask) -> dict:
    with torch.no_grad(), prompt_positions(mask) as ctx:
        model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.zeros(2, 3, dtype=torch.long))
    return {key: w for (tag, key), w in ctx.cache.items() if tag == "mole"}


def test_gate_input_sizes(lora_dirs):
    # tiny LLaMA: q_proj 32 -> 32, gate_proj 32 -> 64; 3 LoRAs; L = 8
    sizes = {"pooled": {3 * 32, 3 * 64}, "paper": {3 * 8 * 32, 3 * 8 * 64}, "hidden": {8 * 32}}
    for gate_input, want in sizes.items():
        length = None if gate_input == "pooled" else 8
        _, model = build("mole", lora_dirs, gate_input=gate_input, gate_length=length)
        assert {g.weight.shape[1] for g in model.mole_gates.values()} == want


def test_prompt_tokens_line_up_whatever_the_padding_side():
    from molebench.methods.mole import prompt_tokens

    tokens = torch.arange(1.0, 4.0)[:, None]  # a 3-token prompt, one feature each
    right = torch.cat([tokens, torch.zeros(2, 1)])[None]
    left = torch.cat([torch.zeros(2, 1), tokens])[None]
    want = torch.tensor([[[1.0], [2.0], [3.0], [0.0], [0.0], [0.0]]])
    torch.testing.assert_close(prompt_tokens(right, torch.tensor([[1, 1, 1, 0, 0]]), 6, "g"), want)
    torch.testing.assert_close(prompt_tokens(left, torch.tensor([[0, 0, 1, 1, 1]]), 6, "g"), want)


def test_fixed_length_inputs_refuse_a_missing_length_or_a_longer_batch(lora_dirs, inputs, tmp_path):
    for gate_input in ("paper", "hidden"):
        with pytest.raises(ValueError, match="set gate_length"):
            build("mole", lora_dirs, gate_input=gate_input)
    with pytest.raises(ValueError, match="only applies"):
        build("mole", lora_dirs, gate_length=8)
    _, model = build("mole", lora_dirs, gate_input="paper", gate_length=4)
    with pytest.raises(RuntimeError, match="prompt of 7 tokens is longer than gate_length 4"):
        logits(model, *inputs)
    with pytest.raises(ValueError, match="gate_length 4 is shorter than the training max_input_tokens 160"):
        fit(lora_dirs, 1, tmp_path, gate_input="paper", gate_length=4)


def test_paper_input_trains(lora_dirs, tmp_path):
    method, model, info = fit(lora_dirs, 1, tmp_path, train={"max_input_tokens": 8}, gate_input="paper",
                              gate_length=8)
    assert math.isfinite(info["final_loss"]) and method.gate_report(model)["source"] == "last training step"


# ---- temperature and balance ---------------------------------------------------------------------------------

def test_fixed_temperature_stays_fixed_after_fit(lora_dirs, tmp_path):
    method, model, _ = fit(lora_dirs, 1, tmp_path, temperature=2.0, learn_temperature=False)
    assert not any("log_tau" in n for n in method.trained_parameters(model))
    for gate in model.mole_gates.values():
        assert gate.log_tau.item() == torch.tensor(2.0).log().item()


@pytest.mark.parametrize("lr_experts, scale", [(None, 1.0), (3, 1.0), (2, 2 / 3), (1, 1 / 3)])
def test_gate_lr_is_scaled_down_beyond_lr_experts_loras(lora_dirs, tmp_path, lr_experts, scale):
    """Over N LoRAs the gates train at lr x lr_experts / N once N exceeds lr_experts (Table 6's 24 to 128 LoRAs),
    at the configured lr up to it (every 3-LoRA table); the log records the lr the optimiser used."""
    fit(lora_dirs, 1, tmp_path, lr_experts=lr_experts)
    log = [json.loads(line) for line in (tmp_path / "log1.jsonl").read_text().splitlines()]
    assert len(lora_dirs) == 3 and [r["lr"] for r in log] == pytest.approx([0.05 * scale] * 3)


def test_lr_experts_must_count_loras(lora_dirs):
    with pytest.raises(ValueError, match="lr_experts"):
        build("mole", lora_dirs, lr_experts=0)


def test_balance_loss_is_minimal_at_uniform_gates_and_finite_when_a_weight_underflows():
    from molebench.methods.mole import balance_loss

    uniform = balance_loss(torch.full((2, 4, 3), 1 / 3).log())
    skewed = torch.tensor([[[0.8, 0.1, 0.1]] * 4])
    assert balance_loss(skewed.log()) > uniform
    assert balance_loss(skewed.log()).item() == pytest.approx(-torch.log(skewed.mean((0, 1))).sum().item(), rel=1e-6)
    assert uniform.item() == pytest.approx(3 * math.log(3), rel=1e-6)
    # 128 LoRAs, one of them starved: its softmax weight is exp(-200), 0 in float32, so -log(mean weight) is inf
    logits = torch.zeros(2, 4, 128, requires_grad=True)
    starved = logits - 200 * (torch.arange(128) == 5)
    loss = balance_loss(torch.log_softmax(starved, dim=-1))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 128 * math.log(128)
    assert torch.isfinite(logits.grad).all() and logits.grad[..., 5].lt(0).all()  # descent raises the starved LoRA


def test_gates_start_near_nla(lora_dirs, inputs):
    _, model = build("mole", lora_dirs)
    _, nla = build("nla", lora_dirs, space="output")
    torch.testing.assert_close(logits(model, *inputs), logits(nla, *inputs), atol=2e-3, rtol=1e-2)


def test_needs_prompt_positions(lora_dirs, inputs):
    _, model = build("mole", lora_dirs)
    with pytest.raises(RuntimeError, match="prompt_positions"):
        model(input_ids=inputs[0])


# ---- masking (Figures 1 and 8) -------------------------------------------------------------------------------

def test_mask_zeroes_the_dropped_lora_and_renormalises_the_rest(lora_dirs, inputs):
    _, full = build("mole", lora_dirs)
    _, masked = build("mole", lora_dirs, mask=["lora1"])  # same seed, so the same gates
    masked_weights = gate_weights(masked, *inputs)
    for w in masked_weights.values():
        assert (w[:, 1] == 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(2))
    first = "model.layers.0.self_attn"  # the first gate's input does not depend on earlier (masked) mixing
    kept = gate_weights(full, *inputs)[first][:, [0, 2]]
    torch.testing.assert_close(masked_weights[first][:, [0, 2]], kept / kept.sum(-1, keepdim=True))


def test_mask_leaving_one_lora_equals_that_lora_alone(lora_dirs, inputs):
    method, model = build("mole", lora_dirs, mask=[0, "lora2"])
    want = manual_sum(lora_dirs, [0.0, 1.0, 0.0], *inputs)
    torch.testing.assert_close(logits(model, *inputs), want, atol=1e-5, rtol=1e-4)
    assert method.gate_report(model)["masked"] == ["lora0", "lora2"]


def test_mask_refuses_dropping_every_lora_or_an_unknown_one(lora_dirs):
    with pytest.raises(ValueError, match="drops every LoRA"):
        build("mole", lora_dirs, mask=["lora0", 1, "lora2"])
    with pytest.raises(ValueError, match="unknown LoRA 'nope'.*'lora0', 'lora1', 'lora2'"):
        build("mole", lora_dirs, mask=["nope"])
    with pytest.raises(ValueError, match="unknown LoRA 3"):
        build("mole", lora_dirs, mask=[3])
    with pytest.raises(ValueError, match="twice"):
        build("mole", lora_dirs, mask=["lora0", "lora0"])


def test_masked_variant_trains_and_loads_the_same_gates(lora_dirs, inputs, tmp_path):
    method, model, _ = fit(lora_dirs, 1, tmp_path)
    _, masked_model, _ = fit(lora_dirs, 1, tmp_path, mask=["lora1"])
    for (name, p), (_, q) in zip(model.mole_gates.named_parameters(), masked_model.mole_gates.named_parameters()):
        assert torch.equal(p, q), name  # training ignores the mask
    method.save(model, tmp_path / "state")
    masked_method, fresh = build("mole", lora_dirs, mask=["lora1"])
    masked_method.load(fresh, tmp_path / "state")
    for w in gate_weights(fresh, *inputs).values():
        assert (w[:, 1] == 0).all()


# ---- training: what changes, what is logged, save/load -------------------------------------------------------

def test_fit_changes_only_gate_and_temperature_parameters(lora_dirs, tmp_path):
    method, model = build("mole", lora_dirs)
    before = {n: t.clone() for n, t in [*model.state_dict().items(), *model.named_buffers()]}
    trainer = Trainer(TrainConfig(steps=3, batch_size=4, lr=0.05), 1, tmp_path / "log.jsonl")
    method.fit(model, CharTokenizer(), train_records(), trainer)
    trained = set(method.trained_parameters(model))
    assert trained == {n for n, _ in model.mole_gates.named_parameters(prefix="mole_gates")}
    after = {n: t for n, t in [*model.state_dict().items(), *model.named_buffers()]}
    assert set(after) == set(before)
    for name, value in after.items():
        if name in trained:
            assert not torch.equal(value, before[name]), name
        else:
            assert torch.equal(value, before[name]), name


def test_train_log_has_gate_entropy_and_mean_weights(lora_dirs, tmp_path):
    fit(lora_dirs, 1, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "log1.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert 0 < row["gate_entropy"] <= math.log(3) + 1e-6
        assert sum(row["gate_mean_weights"]) == pytest.approx(1, abs=1e-5)


def test_gate_report_is_per_gate_per_lora_at_inference(lora_dirs, inputs, tmp_path):
    method, model, _ = fit(lora_dirs, 1, tmp_path)
    assert method.gate_report(model)["source"] == "last training step"
    logits(model, *inputs)
    logits(model, *inputs)
    report = method.gate_report(model)
    assert report["source"] == "inference" and report["experts"] == ["lora0", "lora1", "lora2"]
    assert len(report["gates"]) == 4
    for gate in report["gates"].values():
        assert gate["samples"] == 4
        assert sum(gate["mean_weights"]) == pytest.approx(1.0, abs=1e-5)
        assert 0 < gate["mean_entropy"] <= math.log(3) + 1e-6
    logits(model, inputs[0][:1], inputs[1][:1])  # a report covers the samples since the previous one
    assert all(gate["samples"] == 1 for gate in method.gate_report(model)["gates"].values())


def test_trained_gates_round_trip(lora_dirs, inputs, tmp_path):
    method, model, info = fit(lora_dirs, 1, tmp_path)
    assert info["trainable_params"] == sum(p.numel() for p in method.trained_parameters(model).values())
    method.save(model, tmp_path / "state")
    fresh_method, fresh = build("mole", lora_dirs)
    before = logits(fresh, *inputs)
    fresh_method.load(fresh, tmp_path / "state")
    after = logits(fresh, *inputs)
    assert not torch.allclose(before, after)  # the trained gates changed the outputs
    torch.testing.assert_close(after, logits(model, *inputs))


def test_fit_is_deterministic(lora_dirs, tmp_path):
    _, a, _ = fit(lora_dirs, 3, tmp_path)
    _, b, _ = fit(lora_dirs, 3, tmp_path)
    for (na, pa), (nb, pb) in zip(a.mole_gates.named_parameters(), b.mole_gates.named_parameters()):
        assert torch.equal(pa, pb), na
