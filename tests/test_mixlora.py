"""MixLoRA and its PEFT baselines on tiny random LLaMA and T5 models: the formula, the two execution paths, parity with
the PyPI `mixlora` package, the balance loss, save/load, determinism and the config checks."""

import copy
import importlib.util

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from molebench.core import method as methods
from molebench.core.training import TrainConfig, Trainer
from tests.conftest import CharTokenizer, logits, tiny_llama, train_records
from tests.test_mole import tiny_t5

OPTIONS = {"num_experts": 4, "top_k": 2, "r": 2, "lora_alpha": 4, "lora_dropout": 0.0}


def build(options=None, base=tiny_llama):
    cls = methods.get("mixlora")
    method = cls(cls.config_class.from_dict({**OPTIONS, **(options or {})}))
    torch.manual_seed(5)  # router and LoRA A init
    return method, method.build(base(), [])


def randomise(model, seed=3):
    """Give every trainable tensor random values (LoRA B starts at zero, which would hide the experts)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.1)
    return model


def test_execution_paths_agree_in_outputs_and_gradients(inputs):
    (_, plain), (_, fast) = build({"execution": "plain"}), build({"execution": "optimised"})
    randomise(plain), randomise(fast)
    torch.testing.assert_close(logits(plain, *inputs), logits(fast, *inputs), rtol=1e-5, atol=1e-5)
    grads = []
    for model in (plain, fast):
        model.train()
        model(input_ids=inputs[0], attention_mask=inputs[1]).logits.square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and any("router" in n for n in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_ffn_matches_the_formula_token_by_token():
    """y = sum over the renormalised top-k of p_e * E_e(x), E_e the FFN with expert e's LoRAs merged into W1, W3, W2."""
    method, model = build({"attention_lora": False, "num_experts": 3, "top_k": 2})
    randomise(model)
    ffn = method.ffns["model.layers.0.mlp"]
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        got = ffn(x)
        s = ffn.scaling
        merged = {role: [ffn.linear(role).weight + s * ffn.lora_B[role][e] @ ffn.lora_A[role][e] for e in range(3)]
                  for role in ("gate", "up", "down")}
        for b in range(2):
            for t in range(5):
                h = x[b, t]
                p = (ffn.router.weight @ h).softmax(-1)
                top = p.topk(2).indices
                want = sum(p[e] / p[top].sum() * merged["down"][e] @ (
                    torch.nn.functional.silu(merged["gate"][e] @ h) * (merged["up"][e] @ h)) for e in top.tolist())
                torch.testing.assert_close(got[b, t], want, rtol=1e-5, atol=1e-6)


def test_starts_as_the_base_model(inputs):
    """LoRA B starts at zero and the top-k weights sum to one, so the untrained MixLoRA is the base model."""
    _, model = build()
    torch.testing.assert_close(logits(model, *inputs), logits(tiny_llama(), *inputs))


def test_router_is_fp32_without_bias_and_initialised_at_002():
    method, _ = build({"num_experts": 8, "top_k": 2})
    ffn = next(iter(method.ffns.values()))
    assert ffn.router.weight.dtype == torch.float32 and ffn.router.bias is None
    assert abs(ffn.router.weight.std().item() - 0.02) < 0.006


def test_padding_is_not_routed(inputs):
    method, model = build()
    logits(model, *inputs)
    report = method.gate_report(model)
    assert {layer["tokens"] for layer in report["layers"].values()} == {int(inputs[1].sum())}
    assert all(abs(sum(layer["share"]) - 1) < 1e-5 for layer in report["layers"].values())
    assert method.gate_report(model) is None  # reports routing since the last report


def test_balance_loss_matches_transformers_mixtral():
    from molebench.methods.mixlora import load_balance_loss
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    torch.manual_seed(0)
    layers = tuple(torch.randn(12, 6) for _ in range(3))
    mask = torch.ones(3, 4, dtype=torch.long)
    mask[0, :2] = 0
    want = load_balancing_loss_func(layers, 6, top_k=2, attention_mask=mask)
    keep = mask.reshape(-1).bool()
    torch.testing.assert_close(load_balance_loss(torch.cat([g[keep] for g in layers]), 2), want)
    torch.testing.assert_close(load_balance_loss(torch.cat(layers), 2), load_balancing_loss_func(layers, 6, top_k=2))


def test_parity_with_the_official_mixlora_package(inputs, tmp_path):
    """Our forward equals PyPI `mixlora`'s (its own MixLoraSparseMoe and LoraLinear) given the same weights, which it
    reads from our saved official-format folder."""
    if importlib.util.find_spec("mixlora") is None:
        pytest.skip("the PyPI package `mixlora` is not installed (`pip install --no-deps mixlora==0.2.3`, Makefile)")
    import mixlora

    method, model = build({"lora_dropout": 0.05})  # the package refuses lora_dropout 0; eval mode drops nothing
    randomise(model)
    method.save(model, tmp_path)
    config, weights = mixlora.load_adapter_weights(str(tmp_path / "official"), device="cpu")
    official = tiny_llama()
    mixlora.inject_adapter_in_model(official, config, weights)
    official.eval()
    # the package keeps its expert LoRAs in a plain dict, so eval() misses them and their dropout stays on
    for layer in official.model.layers:
        for expert in layer.mlp.mixlora_moes["default"].experts_.values():
            expert.eval()
    torch.testing.assert_close(logits(official, *inputs), logits(model, *inputs), rtol=1e-5, atol=1e-5)


def test_save_and_load_round_trip(inputs, tmp_path):
    method, model = build()
    randomise(model)
    method.save(model, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"state.safetensors", "method.json", "official"}
    fresh, reloaded = build()
    fresh.load(reloaded, tmp_path)
    torch.testing.assert_close(logits(reloaded, *inputs), logits(model, *inputs))


def fit(seed, tmp_path, options=None):
    method, model = build(options)
    trainer = Trainer(TrainConfig(steps=3, batch_size=4, lr=0.02), seed, tmp_path / f"log{seed}.jsonl")
    info = method.fit(model, CharTokenizer(), train_records(), trainer)
    return method, model, info


def test_fit_is_seeded_and_trains_routers_experts_and_attention_only(tmp_path):
    from molebench.core.io import read_jsonl

    method, model, info = fit(1, tmp_path, {"jitter_noise": 0.1, "lora_dropout": 0.1})
    _, again, _ = fit(1, tmp_path)  # options other than the seed's stochastic parts do not matter here
    _, same, _ = fit(1, tmp_path, {"jitter_noise": 0.1, "lora_dropout": 0.1})
    trained = method.trained_parameters(model)
    assert all("router" in n or "lora_" in n for n in trained)
    assert any("self_attn" in n for n in trained) and any("router" in n for n in trained)
    assert info["trainable_params"] == sum(p.numel() for p in trained.values())
    for name, p in trained.items():
        torch.testing.assert_close(p, method.trained_parameters(same)[name], rtol=0, atol=0)
    assert any(not torch.equal(p, method.trained_parameters(again)[n]) for n, p in trained.items())
    log = read_jsonl(tmp_path / "log1.jsonl")
    assert all(rec["extra_loss"] > 0 for rec in log)  # the balance loss is on (coefficient 0.001)
    assert method.gate_report(model)["layers"]  # training utilisation, written beside the compose output


def test_balance_loss_coefficient_zero_turns_it_off(tmp_path):
    from molebench.core.io import read_jsonl

    fit(2, tmp_path, {"router_aux_loss_coef": 0.0})
    assert all(rec["extra_loss"] == 0 for rec in read_jsonl(tmp_path / "log2.jsonl"))


def test_t5_gated_ffns_in_encoder_and_decoder():
    method, model = build(base=tiny_t5)
    assert {w.stack for w in method.ffns.values()} == {"base_model.model.encoder", "base_model.model.decoder"}
    assert len(method.ffns) == 4
    randomise(model)
    ids = torch.randint(3, 97, (2, 6))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.zeros(2, 3, dtype=torch.long))
    tokens = {name.split(".")[2]: layer["tokens"] for name, layer in method.gate_report(model)["layers"].items()}
    assert tokens == {"encoder": 10, "decoder": 6}  # encoder padding is not routed


@pytest.mark.parametrize("options,message", [
    ({"num_experts": 4, "top_k": 5}, "top_k must be between 1 and num_experts"),
    ({"num_experts": 0, "top_k": 1}, "num_experts must be at least 1"),
    ({"layout": "gpt2"}, "layout must be 'auto' or one of"),
    ({"execution": "fast"}, "execution must be one of"),
])
def test_bad_options_fail_at_config_check(options, message):
    from molebench.config import check, load_config
    from molebench.core.errors import ConfigError

    config = copy.deepcopy(load_config("config/smoke.yaml"))
    config["variants"]["bad"] = {"method": "mixlora", "options": options}
    with pytest.raises(ConfigError, match=message):
        check(config)


def test_a_model_without_a_known_gated_ffn_fails_at_build():
    relu_t5 = lambda: T5ForConditionalGeneration(T5Config(vocab_size=97, d_model=32, d_ff=64, d_kv=8, num_layers=1,
                                                          num_heads=4, feed_forward_proj="relu"))  # wi / wo
    with pytest.raises(ValueError, match="has no gated FFN with the module names of llama"):
        build(base=relu_t5)
    with pytest.raises(ValueError, match="has no gated FFN with the module names of t5"):
        build({"layout": "t5"})


def test_compose_fails_before_training_on_an_unknown_ffn(tmp_path, monkeypatch):
    """The build runs before any training step, so a model without the FFN names fails before the trainer starts."""
    from molebench.nlp import stages

    monkeypatch.setattr("molebench.core.composition.load_base", lambda path: (tiny_llama(), CharTokenizer()))
    monkeypatch.setattr("molebench.core.training.Trainer.train", lambda *a, **k: pytest.fail("training started"))
    variant = {"method": "mixlora", "options": {"layout": "t5"}}
    with pytest.raises(ValueError, match="has no gated FFN"):
        stages.compose("bad", variant, "base", {}, [], {"steps": 2}, 1, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# ---- baselines ---------------------------------------------------------------------------------------------------

def llama2_7b_layer(layers=1):
    """Llama-2-7B's shapes (d 4096, FFN 11008), `layers` layers, on the meta device: counted, never allocated."""
    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers, num_attention_heads=32,
                         num_key_value_heads=32, vocab_size=32000)
    with torch.device("meta"):
        return LlamaForCausalLM(config)


def test_parameter_matched_lora_rank_at_llama2_7b_shapes():
    """The official templates pair MixLoRA r 16 x 8 experts with LoRA r 80; the exact match at these shapes is 81."""
    from molebench.methods.mixlora import MixLoRAConfig, mixlora_trainable_params

    base = llama2_7b_layer()
    per_layer = mixlora_trainable_params(base, MixLoRAConfig())
    assert per_layer == 4 * 16 * 8192 + 8 * 16 * 3 * (4096 + 11008) + 4096 * 8
    cls = methods.get("lora")
    method = cls(cls.config_class.from_dict({"match_mixlora": {}}))
    peft_model = method.build(base, [])
    assert peft_model.peft_config["default"].r == 81 and peft_model.peft_config["default"].lora_alpha == 162
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert abs(trainable - per_layer) / per_layer < 0.01


@pytest.mark.parametrize("name,dora", [("lora", False), ("dora", True)])
def test_baselines_are_peft_adapters_on_attention_and_ffn(name, dora, inputs, tmp_path):
    cls = methods.get(name)
    method = cls(cls.config_class.from_dict({"r": 2, "lora_alpha": 4}))
    model = method.build(tiny_llama(), [])
    config = model.peft_config["default"]
    assert config.use_dora is dora and config.r == 2
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert any("lora_magnitude_vector" in n for n, _ in model.named_parameters()) is dora
    method.save(model, tmp_path)
    assert (tmp_path / "adapter_config.json").is_file()  # a standard PEFT folder


def test_cost_counts_router_expert_and_attention_lora_flops():
    """Per token over the base: attention LoRAs 2 r (d_in + d_out) each; per FFN the router 2 d E, top_k experts'
    LoRA deltas on three matrices, and top_k - 1 more W2 products."""
    from molebench.core.accounting import cost

    _, model = build({"num_experts": 4, "top_k": 2, "r": 2})
    base_params = sum(p.numel() for p in tiny_llama().parameters())
    d, f, r, layers = 32, 64, 2, 2
    attention = 2 * r * ((32 + 32) + (32 + 16) + (32 + 16) + (32 + 32))  # q, k, v (2 KV heads of 8), o
    ffn = 2 * d * 4 + 2 * 2 * r * 3 * (d + f) + 2 * d * f
    assert cost(model, base_params, 0)["extra_flops_per_token"] == layers * (attention + ffn)


def test_router_stays_fp32_under_bf16_autocast(inputs):
    method, model = build()
    randomise(model)
    seen = []
    next(iter(method.ffns.values())).router.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = logits(model, *inputs)
    assert seen == [torch.float32] and torch.isfinite(out).all()
