"""Shared fixtures: a tiny random LLaMA and PEFT LoRA folders with random (non-zero) weights."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def make_lora(path, seed: int, r: int = 4, targets=TARGETS, base_seed: int = 0):
    """Save a PEFT LoRA with random A and B (PEFT starts B at zero, which would hide composition bugs)."""
    from peft import LoraConfig, get_peft_model

    model = tiny_llama(base_seed)
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
