"""What a method costs: trainable parameters, parameters at inference, and extra FLOPs per token over the base model.

FLOPs count multiply-adds as 2 and only the matrix products that run for every token: a banked LoRA layer adds
2 * N * r * (d_in + d_out) per token; merged LoRAs add nothing; an unmerged PEFT LoRA layer adds 2 * r * (d_in + d_out) per
active adapter; a module with `extra_flops_per_token()` (MixLoRA's FFN) reports its own. Costs paid once per sequence (MoLE's gate reads
the pooled prompt once) are left out. The base model's FLOPs per token are taken as 2 x its parameters, the usual
estimate for decoder LMs (the LM head, tied to the embeddings, runs once per token).
"""

from __future__ import annotations

from torch import nn

from molebench.core.bank import BankedLinear


def cost(model: nn.Module, base_params: int, trainable_params: int) -> dict:
    bank = sum(m.bank.a.numel() + m.bank.b.numel() for m in model.modules() if isinstance(m, BankedLinear))
    inference = sum(p.numel() for p in model.parameters()) + bank
    extra_flops = 2 * bank + sum(_module_flops(m) for m in model.modules())
    return {"trainable_params": trainable_params, "inference_params": inference,
            "extra_params": inference - base_params, "extra_flops_per_token": extra_flops,
            "extra_flops_percent": round(100.0 * extra_flops / (2 * base_params), 4)}


def _module_flops(module: nn.Module) -> int:
    """Extra FLOPs per token of a module that reports its own (MixLoRA's FFN) or of an unmerged PEFT LoRA layer."""
    from peft.tuners.lora import LoraLayer

    if hasattr(module, "extra_flops_per_token"):
        return module.extra_flops_per_token()
    if isinstance(module, LoraLayer) and not module.merged:
        return sum(2 * module.r[name] * (module.in_features + module.out_features) for name in module.active_adapters)
    return 0
