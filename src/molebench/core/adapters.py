"""LoRA experts are ordinary PEFT adapter folders (adapter_config.json + adapter_model.safetensors).

`load_expert` reads one through PEFT, checks it against the base model, and returns its factors per module, so that
methods can compose LoRAs from anywhere (trained here, or a published pool).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError

PICKLE_FILES = ("adapter_model.bin", "pytorch_model.bin")
# PEFT combinations that add the A and B factors separately, so every LoRA must have the same rank
EQUAL_RANK_COMBINATIONS = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")


class AdapterError(ValueError):
    """An adapter folder that cannot be used; the message says what is wrong and how to fix it."""


@dataclasses.dataclass
class Expert:
    name: str
    path: Path
    rank: int
    # module name in the base model -> (A (r, d_in), B (d_out, r), scaling)
    factors: dict[str, tuple[torch.Tensor, torch.Tensor, float]]


def _scaling(cfg, module: str) -> tuple[int, float]:
    r = next((v for k, v in (cfg.rank_pattern or {}).items() if module.endswith(k)), cfg.r)
    alpha = next((v for k, v in (cfg.alpha_pattern or {}).items() if module.endswith(k)), cfg.lora_alpha)
    return r, alpha / math.sqrt(r) if cfg.use_rslora else alpha / r


def load_expert(path: str | Path, base: torch.nn.Module, name: str | None = None) -> Expert:
    """Read and validate a PEFT LoRA folder against `base`.

    Raises:
        AdapterError: missing or pickle-only weights, a config that does not match the weights, a LoRA variant the
            composition code does not support, or a LoRA made for another base model.
    """
    from peft import LoraConfig
    from peft.utils import load_peft_weights

    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        raise AdapterError(f"{path}: no adapter_config.json; expected a PEFT adapter folder")
    if not (path / "adapter_model.safetensors").is_file():
        pickles = [p for p in PICKLE_FILES if (path / p).exists()]
        hint = f" (found pickle file {pickles[0]}: pickle weights are refused; convert it to safetensors)" if pickles else ""
        raise AdapterError(f"{path}: adapter_model.safetensors is missing{hint}")
    try:
        cfg = LoraConfig.from_pretrained(path)
    except (TypeError, ValueError, json.JSONDecodeError) as err:
        raise AdapterError(f"{path}/adapter_config.json is not a valid LoRA config: {err}") from err
    if cfg.use_dora or getattr(cfg, "lora_bias", False):
        raise AdapterError(f"{path}: DoRA and LoRA bias adapters cannot be composed by output mixing; use a plain LoRA")
    try:
        weights = load_peft_weights(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as err:
        raise AdapterError(f"{path}/adapter_model.safetensors is corrupt or truncated ({err}); retrain or re-download "
                           f"it (delete the folder and rerun its rule)") from err
    modules = dict(base.named_modules())
    factors = {}
    for key, a in weights.items():
        if ".lora_A." not in key:
            continue
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        b = weights.get(key.replace(".lora_A.", ".lora_B."))
        if b is None:
            raise AdapterError(f"{path}: {key} has no matching lora_B weight")
        target = modules.get(module)
        if not isinstance(target, torch.nn.Linear):
            raise AdapterError(f"{path}: LoRA targets {module!r}, which is not a linear layer of base model "
                               f"{base.config.name_or_path!r}; was it trained on another base model?")
        r, scale = _scaling(cfg, module)
        if a.shape != (r, target.in_features) or b.shape != (target.out_features, r):
            raise AdapterError(f"{path}: {module} has A {tuple(a.shape)}, B {tuple(b.shape)} but base model "
                               f"{base.config.name_or_path!r} with r={r} needs A {(r, target.in_features)}, "
                               f"B {(target.out_features, r)}; the LoRA was trained on another base model")
        factors[module] = (a.float(), b.float(), scale)
    if not factors:
        raise AdapterError(f"{path}: no LoRA weights found in adapter_model.safetensors")
    for t in factors.values():
        if not (torch.isfinite(t[0]).all() and torch.isfinite(t[1]).all()):
            raise AdapterError(f"{path}: weights contain NaN or inf; retrain it")
    return Expert(name=name or path.name, path=path, rank=cfg.r, factors=factors)


def peft_combine(base: torch.nn.Module, experts: list[Expert], weights: list[float], combination_type: str,
                 **kwargs) -> torch.nn.Module:
    """Load every expert into one PeftModel, combine them with PEFT's `add_weighted_adapter`, merge for scoring."""
    from peft import PeftModel

    if combination_type in EQUAL_RANK_COMBINATIONS and len({e.rank for e in experts}) > 1:
        raise AdapterError(f"PEFT combination {combination_type!r} works on the LoRA factors and needs LoRAs of equal "
                           f"rank; got ranks {sorted({e.rank for e in experts})}. Use a weight-space combination "
                           f"(cat, svd) or the output space for mixed ranks")
    names = [f"expert{i}" for i in range(len(experts))]
    model = PeftModel.from_pretrained(base, str(experts[0].path), adapter_name=names[0])
    for name, expert in zip(names[1:], experts[1:]):
        model.load_adapter(str(expert.path), adapter_name=name)
    model.add_weighted_adapter(names, weights, adapter_name="combined", combination_type=combination_type, **kwargs)
    model.set_adapter("combined")
    return model.merge_and_unload(adapter_names=["combined"]).eval()
