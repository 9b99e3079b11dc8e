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


def read_config(path: str | Path):
    """The LoraConfig of a PEFT adapter folder, after the checks that need no base model: a folder with
    adapter_config.json, safetensors weights (pickle refused), a plain LoRA, no code shipped with it.

    Raises:
        AdapterError: naming the folder, the problem and the fix.
    """
    from peft import LoraConfig

    path = Path(path)
    if not path.is_dir():
        raise AdapterError(f"{path}: no such adapter folder; give the folder that holds adapter_config.json")
    if not (path / "adapter_config.json").is_file():
        raise AdapterError(f"{path}: no adapter_config.json; expected a PEFT adapter folder (save it with "
                           f"PeftModel.save_pretrained)")
    if not (path / "adapter_model.safetensors").is_file():
        pickles = [p for p in PICKLE_FILES if (path / p).exists()]
        hint = (f" (found pickle file {pickles[0]}: pickle weights are refused, as loading them can run code; "
                f"convert it with safetensors.torch.save_file or PeftModel.save_pretrained(safe_serialization=True))"
                if pickles else "")
        raise AdapterError(f"{path}: adapter_model.safetensors is missing{hint}")
    code = sorted(p.name for p in path.glob("*.py"))
    if code:
        raise AdapterError(f"{path}: ships code ({', '.join(code)}); molebench runs no remote code, so use a folder "
                           f"with only adapter_config.json and adapter_model.safetensors")
    raw = json.loads((path / "adapter_config.json").read_text())
    if raw.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"{path}: a {raw['peft_type']} adapter, not a LoRA; only LoRA adapters can be composed")
    try:
        cfg = LoraConfig.from_pretrained(path)
    except (TypeError, ValueError, json.JSONDecodeError) as err:
        raise AdapterError(f"{path}/adapter_config.json is not a valid LoRA config: {err}") from err
    if cfg.use_dora or getattr(cfg, "lora_bias", False):
        raise AdapterError(f"{path}: DoRA and LoRA bias adapters cannot be composed by output mixing; use a plain LoRA")
    return cfg


def fetch(repo_id: str, revision: str, out_dir: str | Path) -> Path:
    """Download a hub adapter at a pinned revision into `out_dir` (adapter files only) and check its files.

    Raises:
        AdapterError: the hub cannot be reached (offline), or the repository or revision does not exist.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        snapshot_download(repo_id, revision=revision, local_dir=out_dir,
                          allow_patterns=["adapter_config.json", "adapter_model.safetensors", "*.bin", "*.py"])
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as err:
        raise AdapterError(f"hub adapter {repo_id}@{revision} cannot be fetched offline ({type(err).__name__}); "
                           f"set `offline: false` where the hub is reachable, or download it there and give its "
                           f"folder as the expert's `path:`") from err
    except (HFValidationError, OSError) as err:
        raise AdapterError(f"hub adapter {repo_id}@{revision}: {err}; check the repository id and revision") from err
    read_config(out_dir)
    return Path(out_dir)


def load_expert(path: str | Path, base: torch.nn.Module, name: str | None = None) -> Expert:
    """Read and validate a PEFT LoRA folder against `base`.

    Raises:
        AdapterError: missing or pickle-only weights, a config that does not match the weights, a LoRA variant the
            composition code does not support, or a LoRA made for another base model.
    """
    from peft.utils import load_peft_weights

    path = Path(path)
    cfg = read_config(path)
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
                               f"{base.config.name_or_path!r}: it was trained on another base model "
                               f"({cfg.base_model_name_or_path!r}); use LoRAs of this base model or set `model:` "
                               f"to theirs")
        r, scale = _scaling(cfg, module)
        if a.shape != (r, target.in_features) or b.shape != (target.out_features, r):
            raise AdapterError(f"{path}: {module} has A {tuple(a.shape)}, B {tuple(b.shape)} but base model "
                               f"{base.config.name_or_path!r} with r={r} needs A {(r, target.in_features)}, "
                               f"B {(target.out_features, r)}: it was trained on another base model "
                               f"({cfg.base_model_name_or_path!r}); use LoRAs of this base model or set `model:` "
                               f"to theirs")
        factors[module] = (a.float(), b.float(), scale)
    if not factors:
        raise AdapterError(f"{path}: no LoRA weights found in adapter_model.safetensors")
    for t in factors.values():
        if not (torch.isfinite(t[0]).all() and torch.isfinite(t[1]).all()):
            raise AdapterError(f"{path}: weights contain NaN or inf; retrain it")
    return Expert(name=name or path.name, path=path, rank=cfg.r, factors=factors)


def rank_problem(method: str, ranks: dict[str, int]) -> str | None:
    """Why a method that sums LoRA factors cannot compose LoRAs of these ranks (name -> rank), or None."""
    if len(set(ranks.values())) < 2:
        return None
    return (f"{method} sums the LoRA factors (A and B separately), which needs LoRAs of one rank; got ranks "
            f"{', '.join(f'{n}: {r}' for n, r in ranks.items())}. Compose mixed ranks in output or weight space "
            f"(nla, cat, svd, mole) or use LoRAs of one rank")


LoRA = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module -> (A (r, d_in), B (d_out, r)), scaling folded into B


def save_lora(lora: LoRA, base_name: str, out_dir: str | Path) -> None:
    """Write a composition that is one LoRA as a PEFT adapter folder that `PeftModel.from_pretrained` loads with no
    molebench code: target modules by full name, each module's own rank (rank_pattern) and alpha = rank, so that
    PEFT's scaling is 1 (the composition's scaling is already in B)."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    ranks = {m: a.shape[0] for m, (a, _) in lora.items()}
    r = max(ranks.values())
    other = {m: k for m, k in ranks.items() if k != r}
    LoraConfig(r=r, lora_alpha=r, target_modules=sorted(lora), rank_pattern=other, alpha_pattern=other,
               lora_dropout=0.0, base_model_name_or_path=base_name).save_pretrained(str(out_dir))
    save_file({f"base_model.model.{m}.lora_{k}.weight": t.detach().float().cpu().contiguous()
               for m, (a, b) in lora.items() for k, t in (("A", a), ("B", b))},
              Path(out_dir) / "adapter_model.safetensors")


def peft_combine(base: torch.nn.Module, experts: list[Expert], weights: list[float], combination_type: str,
                 **kwargs) -> tuple[torch.nn.Module, LoRA]:
    """Load every expert into one PeftModel, combine them with PEFT's `add_weighted_adapter`, merge for scoring.
    Returns the merged model and the combined LoRA (to export it)."""
    from peft import PeftModel

    problem = rank_problem(f"PEFT combination {combination_type!r}", {e.name: e.rank for e in experts})
    if combination_type in EQUAL_RANK_COMBINATIONS and problem:
        raise AdapterError(problem)
    names = [f"expert{i}" for i in range(len(experts))]
    model = PeftModel.from_pretrained(base, str(experts[0].path), adapter_name=names[0])
    for name, expert in zip(names[1:], experts[1:]):
        model.load_adapter(str(expert.path), adapter_name=name)
    model.add_weighted_adapter(names, weights, adapter_name="combined", combination_type=combination_type, **kwargs)
    model.set_adapter("combined")
    lora = {name.removeprefix("base_model.model."): (m.lora_A["combined"].weight.detach().clone(),
                                                     m.lora_B["combined"].weight.detach() * m.scaling["combined"])
            for name, m in model.named_modules() if "combined" in getattr(m, "lora_A", {})}
    return model.merge_and_unload(adapter_names=["combined"]).eval(), lora
