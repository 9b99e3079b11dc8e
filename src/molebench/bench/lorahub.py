"""LoraHub's search step, measured side by side in one run: our functional evaluation against the ways PEFT allows.

    molebench bench --lorahub            results/bench/lorahub.json

One search step = set a candidate weight vector w over N LoRAs, then one forward of the few-shot batch for the
loss. Three ways, timed in interleaved rounds (median):
- bank: the stacked factors give (sum w_i B_i)(sum w_i A_i x) directly (molebench's LoraHub);
- state dict: the weighted factors copied into one PEFT adapter, forward unmerged (the `lorahub` package);
- merge per step: the same, then merged into the base weights for the forward and unmerged after it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from peft import PeftModel
from peft.utils import load_peft_weights, set_peft_model_state_dict

from molebench.bench.compose import _random_loras
from molebench.core import method as methods
from molebench.core.adapters import load_expert
from molebench.core.models import load_base
from molebench.core.training import answer_loss


def _batch(vocab: int, examples: int, seq: int, answer: int) -> dict:
    torch.manual_seed(0)
    ids = torch.randint(3, vocab, (examples, seq))
    labels = torch.full_like(ids, -100)
    labels[:, -answer:] = ids[:, -answer:]
    prompt_mask = torch.ones_like(ids)
    prompt_mask[:, -answer:] = 0
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels, "prompt_mask": prompt_mask}


def run(base_dir: str | Path, n_loras: int = 20, examples: int = 5, seq: int = 128, answer: int = 16,
        repeats: int = 5) -> list[dict]:

    base_dir = Path(base_dir)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = _random_loras(base_dir, n_loras, Path(tmp))
        model, _ = load_base(base_dir)
        batch = _batch(model.config.vocab_size, examples, seq, answer)
        lorahub = methods.get("lorahub")()
        ours = lorahub.build(model, [load_expert(d, model) for d in dirs])
        cache = [load_peft_weights(d) for d in dirs]
        peft_model = PeftModel.from_pretrained(load_base(base_dir)[0], dirs[0]).eval()

    def weighted_state(w):
        return {k: sum(wi * sd[k] for wi, sd in zip(w, cache)) for k in cache[0]}

    def step_bank(w):
        return lorahub.objective(ours, batch, examples, w)

    def step_state_dict(w):
        set_peft_model_state_dict(peft_model, weighted_state(w))
        return answer_loss(peft_model, batch).item()

    def step_merge(w):
        set_peft_model_state_dict(peft_model, weighted_state(w))
        peft_model.merge_adapter()
        loss = answer_loss(peft_model, batch).item()
        peft_model.unmerge_adapter()
        return loss

    steps = {"bank (molebench)": step_bank, "PEFT state dict, unmerged (lorahub package)": step_state_dict,
             "PEFT state dict, merge per step": step_merge}
    times: dict[str, list[float]] = {name: [] for name in steps}
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(repeats + 1):  # the first round warms up and is dropped
            w = (torch.rand(n_loras, generator=gen) * 3 - 1.5).tolist()
            for name, fn in steps.items():
                start = time.perf_counter()
                fn(w)
                times[name].append(time.perf_counter() - start)
    ref = statistics.median(times["PEFT state dict, merge per step"][1:])
    return [{"configuration": name, "median_s": round(statistics.median(t[1:]), 4),
             "ratio_to_merge_per_step": round(statistics.median(t[1:]) / ref, 3)} for name, t in times.items()]
