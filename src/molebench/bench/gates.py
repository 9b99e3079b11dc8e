"""MoLE gate-training cost against the number of LoRAs (the paper's Table 6 counts), measured side by side in one run.

    molebench bench --gates              results/bench/gates.json

A randomly initialised LLaMA of SmolLM2-135M's shapes (d 576, FFN 1536, 9 heads, 3 KV heads, vocabulary 49152; fewer
blocks than its 30, `layers`), random rank-8 LoRAs on all 7 projections, MoLE with its default options and each
gate input of `gate_inputs`: the default `pooled` (like the paper's Eq. 9, every gate reads all N LoRA outputs, so it
holds N x N x d parameters) and the official code's `hidden` (the block input over the prompt, N x L x d). One gate
training step (forward, task + balance loss, backward, AdamW on the gates) is timed for every N in interleaved rounds
and reported as the median over rounds, also as a ratio to N = 8. Peak memory is the peak resident set of a fresh
process that builds the same model and runs two steps (CPU has no allocator counter), so it includes Python and torch.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import resource
import statistics
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from molebench.core import method as methods
from molebench.core.adapters import Expert
from molebench.core.training import answer_logprobs, collate

TARGETS = {"self_attn": ["q_proj", "k_proj", "v_proj", "o_proj"], "mlp": ["gate_proj", "up_proj", "down_proj"]}


def _model(n: int, layers: int, gate_input: str, seq: int, rank: int = 8):
    """(method, model, trained gate parameters) for n random LoRAs, the base and LoRAs seeded alike for every n."""

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                         tie_word_embeddings=True)
    base = LlamaForCausalLM(config).eval()
    linears = {name: m for name, m in base.named_modules()
               if any(name.endswith(f"{block}.{t}") for block, ts in TARGETS.items() for t in ts)}
    experts = [Expert(name=f"lora{i}", path=Path(f"lora{i}"), rank=rank, factors={
        name: (torch.randn(rank, m.in_features) * 0.02, torch.randn(m.out_features, rank) * 0.02, 2.0)
        for name, m in linears.items()}) for i in range(n)]
    cls = methods.get("mole")
    method = cls(cls.config_class(gate_input=gate_input, gate_length=None if gate_input == "pooled" else seq))
    model = method.build(base, experts)
    method.fitting = True  # what `fit` sets: gates train over every LoRA and keep their weights for the balance loss
    return method, model, [p for p in model.mole_gates.parameters() if p.requires_grad]


def _batch(batch: int, seq: int, answer: int) -> dict:
    class Pad:
        pad_token_id = 0

    torch.manual_seed(1)
    pairs = [(torch.randint(3, 49152, (seq - answer,)).tolist(), torch.randint(3, 49152, (answer,)).tolist())
             for _ in range(batch)]
    return collate(Pad(), pairs, seq2seq=False)


def _step_fn(method, model, params, batch):
    opt = torch.optim.AdamW(params, lr=1e-5)
    answers = (batch["labels"] != -100).sum()

    def step():
        loss = -answer_logprobs(model, batch).sum() / answers + method.step_loss()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def _peak_rss_mb(n: int, layers: int, gate_input: str, batch: int, seq: int, answer: int, threads: int) -> float:
    """In a fresh process: build, run two steps (the second with AdamW state in place), return the peak RSS."""
    torch.set_num_threads(threads)
    step = _step_fn(*_model(n, layers, gate_input, seq), _batch(batch, seq, answer))
    step()
    step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(sizes: tuple[int, ...] = (8, 24, 48, 128), gate_inputs: tuple[str, ...] = ("pooled", "hidden"),
        layers: int = 4, batch: int = 4, seq: int = 128, answer: int = 16, repeats: int = 3,
        threads: int = 2) -> list[dict]:
    cases = [(g, n) for g in gate_inputs for n in sizes]
    peaks = {}
    for case in cases:  # one fresh process per case, one after another, so each peak is that case's alone
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            peaks[case] = pool.submit(_peak_rss_mb, case[1], layers, case[0], batch, seq, answer, threads).result()
    data = _batch(batch, seq, answer)
    times: dict[tuple, list[float]] = {case: [] for case in cases}
    gate_params = {}
    for _ in range(repeats + 1):  # the first round warms up (and allocates AdamW state) and is dropped
        for case in cases:  # one model at a time: all of them at once would not fit in memory at N = 128
            method, model, params = _model(case[1], layers, case[0], seq)
            gate_params[case] = sum(p.numel() for p in params)
            step = _step_fn(method, model, params, data)
            step()  # AdamW state in place, as in every training step after the first
            start = time.perf_counter()
            step()
            times[case].append(time.perf_counter() - start)
    medians = {case: statistics.median(t[1:]) for case, t in times.items()}
    return [{"gate_input": g, "loras": n, "gate_params": gate_params[g, n], "median_step_s": round(medians[g, n], 4),
             "ratio_to_first": round(medians[g, n] / medians[g, sizes[0]], 3), "peak_rss_mb": round(peaks[g, n])}
            for g, n in cases]
