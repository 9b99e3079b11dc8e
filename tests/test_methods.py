"""Every method on a tiny LLaMA with three random LoRAs: registry, LoRA bank, NLA, single, adapters (MoLE: test_mole.py)."""

from pathlib import Path

import pytest
import torch
import yaml

from molebench.core import method as methods
from molebench.core.adapters import AdapterError, load_expert
from molebench.core.bank import inject
from tests.conftest import CharTokenizer, build, logits, make_lora, manual_sum, tiny_llama


def test_registry_lists_spine_methods():
    assert {"zero-shot", "single", "nla", "mole"} <= set(methods.available())
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        methods.get("nope")


def test_bank_matches_per_lora_loop_shared_and_per_sample_weights(lora_dirs, inputs):
    ids, mask = inputs
    base = tiny_llama()
    experts = [load_expert(d, base) for d in lora_dirs]
    per_sample = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    inject(base, experts, lambda layer, x: layer.bank.mix(layer.bank.low_rank(x), per_sample))
    got = logits(base, ids, mask)
    for row in range(2):
        want = manual_sum(lora_dirs, per_sample[row].tolist(), ids[row:row + 1], mask[row:row + 1])
        torch.testing.assert_close(got[row:row + 1], want, atol=1e-5, rtol=1e-4)


def test_nla_output_space_equals_weight_space(lora_dirs, inputs):
    ids, mask = inputs
    _, out = build("nla", lora_dirs, space="output")
    _, weight = build("nla", lora_dirs, space="weight")
    want = manual_sum(lora_dirs, [1 / 3] * 3, ids, mask)
    torch.testing.assert_close(logits(out, ids, mask), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits(weight, ids, mask), want, atol=1e-5, rtol=1e-4)


def test_nla_factor_space_has_cross_terms(tmp_path, inputs):
    ids, mask = inputs
    dirs = [make_lora(tmp_path / f"l{i}", seed=i) for i in range(2)]
    _, factor = build("nla", dirs, space="factor")
    diff = (logits(factor, ids, mask) - manual_sum(dirs, [0.5, 0.5], ids, mask)).abs().max()
    assert diff > 1e-4  # (sum sqrt(w) B)(sum sqrt(w) A) is not sum w B A
    with pytest.raises(ValueError, match="one rank"):
        build("nla", [make_lora(tmp_path / "r2", seed=5, r=2), dirs[0]], space="factor")


def test_single_equals_peft_adapter(lora_dirs, inputs):
    from peft import PeftModel

    ids, mask = inputs
    _, model = build("single", lora_dirs[:1])
    peft_model = PeftModel.from_pretrained(tiny_llama(), str(lora_dirs[0])).eval()
    torch.testing.assert_close(logits(model, ids, mask), logits(peft_model, ids, mask), atol=1e-5, rtol=1e-4)


def test_adapter_validation(tmp_path, lora_dirs):
    base = tiny_llama()
    corrupt = make_lora(tmp_path / "corrupt", seed=1)
    data = (corrupt / "adapter_model.safetensors").read_bytes()
    (corrupt / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(AdapterError, match="corrupt or truncated"):
        load_expert(corrupt, base)
    pickled = make_lora(tmp_path / "pickled", seed=1)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(AdapterError, match="pickle"):
        load_expert(pickled, base)
    from transformers import LlamaConfig, LlamaForCausalLM

    wider = LlamaForCausalLM(LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2))
    with pytest.raises(AdapterError, match="another base model"):
        load_expert(lora_dirs[0], wider)


def test_answer_logprobs_keeps_only_answer_logits_without_changing_them(inputs):
    from molebench.core.training import answer_logprobs, collate

    model = tiny_llama()
    pairs = [([1, 5, 6, 7, 8], [9, 10, 2]), ([1, 5], [11, 2])]
    batch = collate(CharTokenizer(), pairs, seq2seq=False)
    got = answer_logprobs(model, batch)
    with torch.no_grad():
        full = torch.log_softmax(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                                 -1)
    for row, (prompt, answer) in enumerate(pairs):
        want = [full[row, len(prompt) - 1 + i, tok].item() for i, tok in enumerate(answer)]
        values = got[row][got[row] != 0].tolist()
        assert values == pytest.approx(want, abs=1e-5)


def test_every_registered_method_runs_in_the_smoke_config():
    """The smoke DAG (tests/test_workflow.py) runs every variant of config/smoke.yaml, so a registered method with no
    smoke variant would be untested: every method of the registry must have one (NLP, RAMoLE or text-to-image)."""
    smoke = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "smoke.yaml").read_text())
    used = {v["method"] for v in smoke["variants"].values()} | set(smoke["ramole"]["methods"])
    used |= {v["method"] for v in smoke["t2i"]["variants"].values()}
    assert set(methods.available()) - used == set()
