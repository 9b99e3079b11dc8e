"""SVDiff (Han et al., 2023): per subject, learn shifts of the singular values of frozen weight matrices; compose
subjects by adding their shifts (the paper's "spectral shift" fusion, without its Cut-Mix-Unmix data augmentation).

    W = U diag(sigma) V^T                 once per adapted matrix (SVD of the frozen weight)
    W_delta = U diag(relu(sigma + delta)) V^T       one subject: delta learned (DreamBooth loss), U, V, sigma frozen
    composed: delta = sum_i delta_i                 every subject's shifts added

Written by hand because neither PEFT nor diffusers implements spectral shifts. Only linear layers are shifted (the
paper also shifts convolutions and embeddings); by default the same attention linears the subject LoRAs adapt, so
SVDiff and the LoRA methods change the same matrices. A subject's shifts are one safetensors file per subject
(`shifts.safetensors`, module name -> delta) beside `svdiff.json`.
"""

import dataclasses
import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from molebench.core.method import Method, MethodConfig, register_method


@dataclasses.dataclass
class SVDiffConfig(MethodConfig):
    modules: list[str] = dataclasses.field(
        default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "q_proj", "k_proj", "v_proj", "out_proj"],
        metadata={"help": "linear layers whose singular values are shifted (names or name suffixes)"})
    steps: int = dataclasses.field(default=100, metadata={"help": "training steps of each subject's shifts"})
    batch_size: int = dataclasses.field(default=4, metadata={"help": "images per training step"})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "Adam learning rate of the shifts (SVDiff: 1e-3)"})
    scale: float = dataclasses.field(default=1.0, metadata={"help": "weight of each subject's shifts when composed"})

    def __post_init__(self):
        if not self.modules:
            raise ValueError("svdiff: modules must name at least one linear layer")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("svdiff: steps, batch_size and lr must be positive")


class SpectralShiftLinear(nn.Module):
    """A frozen linear whose weight is rebuilt from its SVD with shifted singular values."""

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        u, s, vh = torch.linalg.svd(base.weight.detach().float(), full_matrices=False)
        self.register_buffer("u", u, persistent=False)
        self.register_buffer("s", s, persistent=False)
        self.register_buffer("vh", vh, persistent=False)
        self.delta = nn.Parameter(torch.zeros_like(s))

    @property
    def weight(self) -> torch.Tensor:
        return (self.u * F.relu(self.s + self.delta)) @ self.vh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype), self.base.bias)


def matches(name: str, patterns: list[str]) -> bool:
    return any(name == p or name.endswith("." + p) or re.fullmatch(p, name) for p in patterns)


def attach(model: nn.Module, patterns: list[str]) -> dict[str, SpectralShiftLinear]:
    """Wrap every matching linear of `model` (the base stays frozen); returns name -> wrapper, in model order."""
    for p in model.parameters():
        p.requires_grad_(False)
    shifted = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and matches(name, patterns):
            wrapper = SpectralShiftLinear(module)
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, wrapper)
            shifted[name] = wrapper
    if not shifted:
        raise ValueError(f"svdiff: no linear layer matches {patterns}")
    return shifted


def save_shifts(shifted: dict[str, SpectralShiftLinear], out_dir: Path, info: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({n: m.delta.detach().cpu().contiguous() for n, m in shifted.items()}, out_dir / "shifts.safetensors")
    (out_dir / "svdiff.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


@dataclasses.dataclass
class SpectralShifts:
    """One subject's trained shifts: the `experts` SVDiff composes (it does not use LoRAs)."""
    name: str
    path: Path
    shifts: dict[str, torch.Tensor]


def load_shifts(path: str | Path, name: str) -> SpectralShifts:
    path = Path(path)
    if not (path / "shifts.safetensors").is_file():
        raise FileNotFoundError(f"{path}: no shifts.safetensors; train the subject's SVDiff shifts first")
    return SpectralShifts(name, path, load_file(path / "shifts.safetensors"))


@register_method("svdiff")
class SVDiff(Method):
    description = "SVDiff: per-subject shifts of singular values, composed by adding them (text-to-image)"
    config_class = SVDiffConfig
    expert_kind = "spectral_shifts"  # experts are SpectralShifts folders, trained per subject, not LoRAs

    def build(self, base, experts):
        if not all(isinstance(e, SpectralShifts) for e in experts):
            raise TypeError("svdiff composes per-subject spectral shifts (trained by the t2i DAG's t2i_shifts rule), "
                            "not LoRAs; use it as a variant of the config's `t2i` section")
        shifted = attach(base, self.config.modules)
        with torch.no_grad():
            for expert in experts:
                unknown = set(expert.shifts) - set(shifted)
                if unknown:
                    raise ValueError(f"svdiff: {expert.path} shifts {sorted(unknown)[:3]}, which the model does not "
                                     f"have or `modules` does not select; was it trained with other modules?")
                for name, delta in expert.shifts.items():
                    shifted[name].delta += self.config.scale * delta.to(shifted[name].delta.device)
        for module in shifted.values():
            module.delta.requires_grad_(False)
        return base.eval()
