"""Shared fixtures and helpers: a tiny random LLaMA, PEFT LoRA folders with random (non-zero) weights, and methods
built over them."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def make_lora(path, seed: int, r: int = 4, targets=TARGETS, base_seed: int = 0, base=tiny_llama):
    """Save a PEFT LoRA with random A and B (PEFT starts B at zero, which would hide composition bugs)."""
    from peft import LoraConfig, get_peft_model

    model = base(base_seed)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets,
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    peft_model.save_pretrained(path)
    return path


@pytest.fixture
def lora_dirs(tmp_path):
    return [make_lora(tmp_path / f"lora{i}", seed=10 + i, r=4 if i != 2 else 2) for i in range(3)]


@pytest.fixture
def inputs():
    torch.manual_seed(1)
    ids = torch.randint(3, 97, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding in the second row
    return ids, mask


def build(name, lora_dirs, base=tiny_llama, **options):
    """(method, model): method `name` with `options` over the LoRAs in `lora_dirs` on a fresh tiny base model."""
    from molebench.core import method as methods
    from molebench.core.adapters import load_expert

    cls = methods.get(name)
    model = base()
    experts = [load_expert(d, model) for d in lora_dirs]
    method = cls(cls.config_class.from_dict(options))
    return method, method.build(model, experts)


def logits(model, ids, mask):
    from molebench.core.models import prompt_positions

    with torch.no_grad(), prompt_positions(mask):
        return model(input_ids=ids, attention_mask=mask).logits


def manual_sum(lora_dirs, weights, ids, mask):
    """W x + sum_i w_i s_i B_i A_i x by hand, one LoRA at a time (the reference the bank must match)."""
    from molebench.core.adapters import load_expert

    base = tiny_llama()
    experts = [load_expert(d, base) for d in lora_dirs]
    originals = {}
    for name, module in base.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name in e.factors for e in experts):
            originals[name] = module

    def hook(name):
        def fn(module, args, out):
            x = args[0]
            for w, e in zip(weights, experts):
                if name in e.factors:
                    a, b, s = e.factors[name]
                    out = out + w * s * (x @ a.T @ b.T)
            return out
        return fn

    for name, module in originals.items():
        module.register_forward_hook(hook(name))
    return logits(base, ids, mask)


class CharTokenizer:
    """Enough of a tokenizer for the training loop: one id per character."""
    pad_token_id, eos_token_id = 0, 2

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": ([1] if add_special_tokens else []) + [3 + ord(c) % 90 for c in text]}


def train_records():
    return [{"id": str(i), "input": f"q {i}", "references": [f"a {i % 3}"]} for i in range(12)]
