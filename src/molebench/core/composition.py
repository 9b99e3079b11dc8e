"""A method built over LoRAs: configured from its options, over experts loaded onto the base model, and a trained
composition's folder saved and loaded again."""

from __future__ import annotations

from pathlib import Path

import torch

from molebench.core import io
from molebench.core.adapters import AdapterError, load_expert, rank_problem
from molebench.core.method import Method, get
from molebench.core.models import load_base


def build(method_name: str, options: dict, model, experts: list) -> tuple[Method, torch.nn.Module]:
    """(method, model to score): the method configured by `options`, built over `model` and its experts."""
    cls = get(method_name)
    method = cls(cls.config_class.from_dict(options))
    if cls.equal_ranks(method.config):  # asked first: not every method's experts are LoRAs with a rank (SVDiff)
        problem = rank_problem(method_name, {e.name: e.rank for e in experts})
        if problem:
            raise AdapterError(problem)
    return method, method.build(model, experts)


def load_composition(method_name: str, options: dict, base_dir: str, adapter_dirs: dict[str, str]):
    """(method, model, tokenizer, base parameter count): the base model from its folder with the named LoRA folders
    loaded and composed by the method."""
    model, tokenizer = load_base(base_dir)
    base_params = sum(p.numel() for p in model.parameters())
    experts = [load_expert(d, model, name=name) for name, d in adapter_dirs.items()]
    method, model = build(method_name, options, model, experts)
    return method, model, tokenizer, base_params


LORAS_FILE = "loras.json"  # in a trained composition's folder: LoRA name -> the folder it was trained over


def save_trained(method: Method, model: torch.nn.Module, loras: dict[str, str], out_dir: str | Path) -> None:
    """A trained composition's folder (MoLE gates, MixLoRA experts and routers, RAMoLE's router, LoraHub's and PEMs'
    weights): method.json (method and options), state.safetensors (the trained parameters) and loras.json."""
    method.save(model, out_dir)
    io.write_json(Path(out_dir) / LORAS_FILE, loras)


def load_trained(method_dir: str | Path, base_dir: str | Path):
    """(method, model, tokenizer): a folder written by `save_trained`, rebuilt over the base model in `base_dir`."""
    spec = io.read_json(Path(method_dir) / "method.json")
    method, model, tokenizer, _ = load_composition(spec["method"], spec["config"], str(base_dir),
                                                   io.read_json(Path(method_dir) / LORAS_FILE))
    method.load(model, method_dir)
    return method, model, tokenizer
