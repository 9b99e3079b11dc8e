"""The one interface every composition or fine-tuning method implements.

A method is one module in methods/ holding a `@dataclass` config (help on every field, `__post_init__` raising on bad
values) and a `Method` subclass registered with `@register_method`. The DAG calls, for every (variant, group, seed):

    method = Method(config)                       # config from the variant entry in config/*.yaml
    model = method.build(base, experts)           # experts: the group's LoRAs (PEFT folders, validated)
    method.fit(model, tokenizer, train, trainer)  # only if `trainable`; trains the method's own parameters
    method.save(model, out_dir) / method.load(model, out_dir)
    method.prompts(test_records, train_records, seed)  # identity unless the method changes prompts (few-shot)

and scores `model` with the shared scorers. Save/load keep exactly the parameters that `fit` trained.

What a method can do is declared by the class flags below; shared code asks them and never looks at a method's name.
Methods are found by name: `get` imports the plug-in package `molebench.methods` (one module per method) and the
`molebench.methods` entry-point group of installed packages, so this core module never imports a method.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import json
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from molebench.core.adapters import Expert, LoRA
from molebench.core.errors import ConfigError
from molebench.core.registry import Registry

PLUGIN_PACKAGE = "molebench.methods"
REGISTRY = Registry("method")


@dataclasses.dataclass
class MethodConfig:
    """Base of every method config; methods add fields, each with metadata={"help": ...}."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MethodConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


class Method(abc.ABC):
    name: ClassVar[str]
    description: ClassVar[str]  # one line, shown by `molebench methods`
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    uses_experts: ClassVar[bool] = True   # composes the LoRAs of its group
    per_task: ClassVar[bool] = False      # one composition per evaluated task (the group is the task itself)
    trainable: ClassVar[bool] = False     # `fit` trains parameters of the method's own
    seeded: ClassVar[bool] = True         # False: the result cannot depend on the seed, so it runs once
    can_mask: ClassVar[bool] = False      # has a `mask` option that drops named LoRAs at inference, unretrained
    expert_kind: ClassVar[str] = "lora"   # what its experts are: "lora" (PEFT folders) or "spectral_shifts" (SVDiff)
    reference: ClassVar[str] = ""         # "zero_shot" / "single_lora": a reference point of the LoRA gain check

    def __init__(self, config: MethodConfig | None = None):
        self.config = config or self.config_class()
        # the composition as one LoRA (module -> (A, B), scaling in B) when it is one, set by `build` (or `load`, for a
        # trained one); the evaluate stage exports it as a PEFT adapter folder. None: a mixture, or no LoRA at all
        self.lora: LoRA | None = None

    @abc.abstractmethod
    def build(self, base: nn.Module, experts: list[Expert]) -> nn.Module:
        """Return the model to score. May modify and return `base`; must not modify the experts."""

    def fit(self, model: nn.Module, tokenizer, train: list[dict], trainer) -> dict:
        """Train the method's parameters on `train` records; returns train info. Only called when `trainable`."""
        raise NotImplementedError(f"{self.name} has nothing to fit")

    def prompts(self, records: list[dict], train: list[dict], seed: int) -> list[dict]:
        """The test records as the method sees them (few-shot adds examples from the task's `train` records)."""
        return records

    def trained_parameters(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {n: p for n, p in model.named_parameters() if p.requires_grad}

    def save(self, model: nn.Module, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        state = {n: p.detach().cpu().contiguous() for n, p in self.trained_parameters(model).items()}
        if state:
            save_file(state, out_dir / "state.safetensors")
        (out_dir / "method.json").write_text(json.dumps(
            {"method": self.name, "config": dataclasses.asdict(self.config)}, indent=2, sort_keys=True) + "\n")

    def load(self, model: nn.Module, in_dir: str | Path) -> None:
        expected = self.trained_parameters(model)
        path = Path(in_dir) / "state.safetensors"
        state = load_file(path) if path.is_file() else {}
        if set(state) != set(expected):
            raise ValueError(f"{in_dir}: saved state has {sorted(state)[:3]}... but {self.name} expects "
                             f"{sorted(expected)[:3]}...; was it saved by another method or config?")
        with torch.no_grad():
            for n, p in expected.items():
                p.copy_(state[n])

    def gate_report(self, model: nn.Module) -> dict | None:
        """Optional analysis data (gate weights, entropy) written beside the method state."""
        return None

    @classmethod
    def equal_ranks(cls, config: MethodConfig) -> bool:
        """Whether this configuration sums LoRA factors (sum w_i A_i, sum w_i B_i), which needs LoRAs of one rank;
        the config check and `molebench.core.composition.build` refuse mixed ranks for it with a clear message."""
        return False

    @classmethod
    def pipeline_problem(cls, config: MethodConfig) -> str | None:
        """Why this configuration cannot compose a text-to-image pipeline's LoRAs, or None when it can."""
        return None


def register_method(name: str):
    """Class decorator of a method plug-in: `@register_method("nla")`."""
    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        return REGISTRY.register(name)(cls)
    return deco


_discovered = False


def available() -> dict[str, type[Method]]:
    """Every registered method by name, after importing the plug-in package's modules and the entry points once."""
    global _discovered
    if not _discovered:  # a flag, not `if not REGISTRY`: importing one method module directly must not stop discovery
        _discovered = True
        package = importlib.import_module(PLUGIN_PACKAGE)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{PLUGIN_PACKAGE}.{info.name}")
        for ep in entry_points(group=PLUGIN_PACKAGE):
            ep.load()
    return dict(sorted(REGISTRY.items()))


def get(name: str) -> type[Method]:
    available()
    return REGISTRY[name]


def variant_method(variant: dict, where: str, error: type[ValueError] = ConfigError):
    """(method class, parsed options) of a variant entry; a bad method or option raises `error` naming `where`, the
    entry's path in the config."""
    try:
        cls = get(variant["method"])
    except KeyError as err:
        raise error(f"{where}: {err.args[0]}") from None
    try:
        return cls, cls.config_class.from_dict(variant.get("options", {}))
    except (TypeError, ValueError) as err:
        raise error(f"{where}.options: {err}") from None
