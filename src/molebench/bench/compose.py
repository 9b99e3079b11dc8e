"""Composition cost, measured side by side in one run: the LoRA bank against PEFT's equivalent.

    molebench bench --composition        results/bench/composition.json
    molebench bench --mixed              results/bench/mixed.json: a batch of 8 samples with 8 different LoRA sets
                                         (RAMoLE's batched heterogeneous inference)

Every configuration is timed in interleaved repetitions (one forward of each per round) and reported as the median
over rounds divided by the base model's median forward. LoRAs are random (r 8 on all 7 projections of the mini base
model) so that no output is zero; timings do not depend on their values.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from molebench.core import method as methods
from molebench.core.adapters import load_expert
from molebench.core.bank import inject
from molebench.core.models import load_base, prompt_positions

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # LLaMA-family names


def _random_loras(base_dir: Path, n: int, out: Path, r: int = 8) -> list[str]:
    dirs = []
    for i in range(n):
        model, _ = load_base(base_dir)
        torch.manual_seed(i)
        peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=TARGETS,
                                                      init_lora_weights=False))
        peft_model.save_pretrained(out / f"lora{i}")
        dirs.append(str(out / f"lora{i}"))
    return dirs


def _peft(base_dir: Path, dirs: list[str]):
    model, _ = load_base(base_dir)
    model = PeftModel.from_pretrained(model, dirs[0], adapter_name="e0")
    for i, d in enumerate(dirs[1:], start=1):
        model.load_adapter(d, adapter_name=f"e{i}")
    return model.eval()


def _bank(base_dir: Path, dirs: list[str], weights: torch.Tensor):
    model, _ = load_base(base_dir)
    inject(model, [load_expert(d, model) for d in dirs], lambda layer, x: layer.bank.mix(layer.bank.low_rank(x), weights))
    return model


def _mole(base_dir: Path, dirs: list[str]):
    model, _ = load_base(base_dir)
    return methods.get("mole")().build(model, [load_expert(d, model) for d in dirs])


def run(base_dir: str | Path, sizes: tuple[int, ...] = (3, 8, 32), batch: int = 8, seq: int = 128,
        repeats: int = 3) -> list[dict]:
    base_dir = Path(base_dir)
    base, _ = load_base(base_dir)
    torch.manual_seed(0)
    ids = torch.randint(3, base.config.vocab_size, (batch, seq))
    mask = torch.ones_like(ids)
    configs = {"base forward": (base, {})}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = _random_loras(base_dir, max(sizes), Path(tmp))
        peft_one = _peft(base_dir, dirs[:1])
        configs["1 LoRA: PEFT"] = (peft_one, {})
        configs["1 LoRA: bank"] = (_bank(base_dir, dirs[:1], torch.ones(1)), {})
        for n in sizes:
            peft_n = _peft(base_dir, dirs[:n])
            peft_n.base_model.set_adapter([f"e{i}" for i in range(n)])  # all active: outputs summed
            configs[f"{n} LoRAs dense: PEFT (all active)"] = (peft_n, {})
            configs[f"{n} LoRAs dense: bank, NLA output space"] = (_bank(base_dir, dirs[:n], torch.full((n,), 1 / n)), {})
            configs[f"{n} LoRAs dense: bank, MoLE gates"] = (_mole(base_dir, dirs[:n]), {})
        mixed = min(batch, max(sizes))
        peft_mixed = _peft(base_dir, dirs[:mixed])
        configs[f"mixed batch, {mixed} different LoRAs: PEFT adapter_names"] = (
            peft_mixed, {"adapter_names": [f"e{i % mixed}" for i in range(batch)]})
        one_hot = torch.eye(mixed)[torch.arange(batch) % mixed]
        configs[f"mixed batch, {mixed} different LoRAs: bank, per-sample weights"] = (
            _bank(base_dir, dirs[:mixed], one_hot), {})
        return _time(configs, ids, mask, repeats)


def _routed(name: str, base_dir: Path, dirs: list[str], routes: torch.Tensor):
    """A RAMoLE-family method over the pool `dirs`, each sample routed to its own LoRAs."""
    model, _ = load_base(base_dir)
    method = methods.get(name)()
    model = method.build(model, [load_expert(d, model) for d in dirs])
    method.route(routes)
    return model


def run_mixed(base_dir: str | Path, batch: int = 8, seq: int = 128, k: int = 3, repeats: int = 3) -> list[dict]:
    """Batched heterogeneous inference: `batch` samples, each with its own LoRA (or its own k LoRAs), one forward."""
    base_dir = Path(base_dir)
    base, _ = load_base(base_dir)
    torch.manual_seed(0)
    ids = torch.randint(3, base.config.vocab_size, (batch, seq))
    mask = torch.ones_like(ids)
    own = torch.arange(batch)[:, None]                            # sample i uses LoRA i
    sets = (own + torch.arange(k)[None]) % batch                  # sample i uses LoRAs i..i+k-1: 8 different sets
    with tempfile.TemporaryDirectory() as tmp:
        dirs = _random_loras(base_dir, batch, Path(tmp))
        configs = {
            "base forward": (base, {}),
            f"1 LoRA per sample ({batch} different): PEFT adapter_names": (
                _peft(base_dir, dirs), {"adapter_names": [f"e{i}" for i in range(batch)]}),
            f"1 LoRA per sample ({batch} different): ours, routed (selection)": (
                _routed("selection", base_dir, dirs, own), {}),
            f"1 LoRA per sample ({batch} different): ours, dense mapping matrix (every LoRA's A)": (
                _bank(base_dir, dirs, torch.eye(batch)), {}),
            f"{k} LoRAs per sample ({batch} different sets): ours, routed mixture": (
                _routed("mixture", base_dir, dirs, sets), {}),
            f"{k} LoRAs per sample ({batch} different sets): ours, RAMoLE RouterLoRA": (
                _routed("ramole", base_dir, dirs, sets), {}),
        }
        return _time(configs, ids, mask, repeats)


def _time(configs: dict, ids: torch.Tensor, mask: torch.Tensor, repeats: int) -> list[dict]:
    """Median forward time of each configuration over interleaved rounds, and its ratio to the base forward."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    with torch.no_grad():
        for _ in range(repeats + 1):  # the first round warms up and is dropped
            for name, (model, kwargs) in configs.items():
                with prompt_positions(mask):  # a fresh context per forward: MoLE recomputes its gates
                    start = time.perf_counter()
                    model(input_ids=ids, attention_mask=mask, **kwargs)
                    times[name].append(time.perf_counter() - start)
    base = statistics.median(times["base forward"][1:])
    return [{"configuration": name, "median_s": round(statistics.median(t[1:]), 4),
             "ratio_to_base": round(statistics.median(t[1:]) / base, 3)} for name, t in times.items()]
