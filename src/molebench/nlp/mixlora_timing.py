"""MixLoRA's two execution paths side by side: per-token latency and peak memory, inference and training, in one run.

    molebench bench --mixlora            results/bench/mixlora.json

One MixLoRA FFN block (methods/mixlora.py: 8 experts, top-2, rank 16, the official defaults) on a frozen LLaMA FFN
with random weights, at SmolLM2-135M's shapes (d 576, FFN 1536) and at Llama-2-7B's (d 4096, FFN 11008). `plain` runs
the whole FFN per expert on its routed tokens; `optimised` computes W1 x and W3 x once for all tokens (the paper's
framework). Only the FFN block is measured: attention, embeddings and the LM head cost the same on both paths, so a
whole model's relative change is smaller than the block's.

Inference is a forward under no_grad; training is a forward and backward of a squared-output loss into the LoRA and
router parameters and the block's input (as for any block inside a model). Times are medians over interleaved rounds
after a warm-up, divided by the tokens in the batch. Peak memory is the most bytes the call itself held at once: on
CUDA `max_memory_allocated` above the starting level, on CPU the running sum of the bytes each operator allocated and
freed, from torch's profiler (`profile_memory=True`), in operator start order.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP

from molebench.methods.mixlora import LAYOUTS, MixLoRAConfig, MixLoRAFFN, Routing

SHAPES = {"SmolLM2-135M": (576, 1536, 8, 128), "Llama-2-7B": (4096, 11008, 2, 128)}  # d, FFN, batch, sequence
OPTIONS = {"num_experts": 8, "top_k": 2, "r": 16, "lora_alpha": 32, "lora_dropout": 0.0}


def block(d: int, ffn: int, execution: str, device: str, options: dict):
    """A MixLoRA FFN over a random frozen LLaMA FFN, LoRA B random too (the cost does not depend on values)."""

    torch.manual_seed(0)
    mlp = LlamaMLP(LlamaConfig(hidden_size=d, intermediate_size=ffn, hidden_act="silu")).to(device).requires_grad_(False)
    config = MixLoRAConfig.from_dict({**options, "execution": execution, "lora_dropout": 0.0})
    wrapper = MixLoRAFFN(mlp, LAYOUTS["llama"], config, Routing(), "")
    with torch.no_grad():
        for b in wrapper.lora_B.values():
            b.normal_(0, 0.02)
    return wrapper.to(device)


def _call(module, x: torch.Tensor, training: bool) -> None:
    if training:
        module.train()
        module(x).square().mean().backward()
        module.zero_grad(set_to_none=True)
    else:
        module.eval()
        with torch.no_grad():
            module(x)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_bytes(fn, device: str) -> int:
    if device == "cuda":
        torch.cuda.synchronize()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def run(repeats: int = 3, shapes: dict[str, tuple[int, int, int, int]] = SHAPES, options: dict = OPTIONS,
        device: str | None = None) -> list[dict]:
    """One row per (shape, mode, path): median microseconds per token, peak MB, each repeat's values (for intervals,
    molebench.report.evidence.lowers), and the optimised path's change.
    shapes: name -> (d, FFN width, batch, sequence); options: MixLoRA options (experts, top-k, rank)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for shape, (d, ffn, batch, seq) in shapes.items():
        torch.manual_seed(1)
        x = torch.randn(batch, seq, d, device=device)
        blocks = {path: block(d, ffn, path, device, options) for path in ("plain", "optimised")}
        for mode in ("inference", "training"):
            training = mode == "training"
            inputs = x.clone().requires_grad_(training)
            times = {path: [] for path in blocks}
            for round_ in range(repeats + 1):  # round 0 warms up
                for path, module in blocks.items():
                    _sync(device)
                    start = time.perf_counter()
                    _call(module, inputs, training)
                    _sync(device)
                    if round_:
                        times[path].append(time.perf_counter() - start)
            peaks = {path: [peak_bytes(lambda m=module, x=inputs, t=training: _call(m, x, t), device) / 2**20
                            for _ in range(repeats)] for path, module in blocks.items()}
            for path in blocks:
                per_token = [1e6 * t / (batch * seq) for t in times[path]]
                rows.append({"shape": shape, "d": d, "ffn": ffn, "tokens": batch * seq, "mode": mode, "path": path,
                             "device": device, "us_per_token": statistics.median(per_token),
                             "peak_mb": statistics.median(peaks[path]),
                             "us_per_token_repeats": per_token, "peak_mb_repeats": peaks[path]})
            plain, fast = rows[-2], rows[-1]
            fast["latency_vs_plain"] = fast["us_per_token"] / plain["us_per_token"] - 1
            fast["memory_vs_plain"] = fast["peak_mb"] / plain["peak_mb"] - 1
    return rows
