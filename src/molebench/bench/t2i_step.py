"""What a training step of the world's base model costs at each UNet shape (issue 24: the base under 15 CPU-minutes).

    molebench bench --t2i-step --config config/config.yaml config/t2i.yaml [--unets 32,64:8 32,64:2:bf16] [--threads 1]

Each UNet (block channels : attention heads, `:bf16` for its steps under bf16 autocast) is built as
`build_world_generator` builds the config's and trained on random images and text states at
`t2i.base_train.batch_size`, in turn, a round each, `--repeats` rounds of 5 steps after a warm-up step; reported per
shape: its parameters, the median step in CPU seconds, the ratio to the first shape's and the CPU-minutes of
`base_train.steps` such steps. The steps' content does not matter to their time; whether a
shape still follows its prompts is the DAG's precondition check (docs/methods.md, "Text-to-image").
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from molebench.core.training import autocast, uses_bf16
from molebench.t2i.components import WorldModelConfig, build_world_generator, diffusion_loss

STEPS_PER_ROUND = 5


def parse_unet(text: str) -> tuple[list[int], int, bool]:
    """'24,48:2' -> ([24, 48], 2, False); '24,48:2:bf16' -> ([24, 48], 2, True)."""
    try:
        channels, heads, *precision = text.split(":")
        if precision not in ([], ["bf16"]):
            raise ValueError
        return [int(c) for c in channels.split(",")], int(heads), precision == ["bf16"]
    except ValueError:
        raise SystemExit(f"--unets: {text!r} is not CHANNELS:HEADS[:bf16], e.g. 24,48:2 or 32,64:2:bf16") from None


def run(t2i: dict, unets: list[str] | None, repeats: int) -> list[dict]:
    """unets: shapes as CHANNELS:HEADS[:bf16] (None: the config's model, in the config's precision)."""
    model_cfg = WorldModelConfig(**t2i["model"])
    batch, steps = t2i["base_train"]["batch_size"], t2i["base_train"]["steps"]
    shapes = ([parse_unet(u) for u in unets] if unets else
              [(model_cfg.unet_channels, model_cfg.attention_heads, t2i["base_train"].get("autocast_bf16", False))])
    trainers = []
    for channels, heads, bf16 in shapes:
        gen = build_world_generator(dataclasses.replace(model_cfg, unet_channels=channels, attention_heads=heads), 0)
        params = list(gen.unet.parameters())
        for p in params:
            p.requires_grad_(True)
        trainers.append((gen, params, torch.optim.AdamW(params, lr=1e-3), bf16))
    rng = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, model_cfg.resolution, model_cfg.resolution, generator=rng)
    states = torch.randn(batch, model_cfg.max_tokens, trainers[0][0].text_encoder.config.hidden_size, generator=rng)

    def step(gen, params, opt, bf16) -> float:
        start = time.process_time()
        with autocast(bf16):
            loss = diffusion_loss(gen, images, states, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.process_time() - start

    times = [[] for _ in shapes]
    for trainer in trainers:
        step(*trainer)  # warm-up
    for _ in range(repeats):  # in turn, so that a drift of the machine's speed reaches every shape alike
        for i, trainer in enumerate(trainers):
            times[i] += [step(*trainer) for _ in range(STEPS_PER_ROUND)]
    medians = [statistics.median(t) for t in times]
    return [{"unet_channels": channels, "attention_heads": heads, "bf16": uses_bf16(bf16),
             "params": sum(p.numel() for p in params), "median_step_cpu_s": median, "ratio_to_first": median / medians[0],
             "base_cpu_minutes": median * steps / 60, "batch_size": batch, "steps": steps}
            for (channels, heads, _), (_, params, _, bf16), median in zip(shapes, trainers, medians, strict=True)]


HEADER = f"{'UNet':15s} {'params':>10s} {'step (CPU)':>12s} {'ratio':>9s}"


def line(row: dict) -> str:
    shape = f"{','.join(map(str, row['unet_channels']))}:{row['attention_heads']}{':bf16' * row['bf16']}"
    return (f"{shape:15s} {row['params']:10,d} {row['median_step_cpu_s']:10.3f} s {row['ratio_to_first']:8.2f}x "
            f"{row['base_cpu_minutes']:10.1f} CPU-min for {row['steps']} steps at batch {row['batch_size']}")
