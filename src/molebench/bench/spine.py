"""The spine's costs: the smoke DAG from nothing, and one LoRA training step (fp32 and bf16 autocast) and one scoring
batch at the config's scale, measured in one run."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

from molebench.core.data import build_splits, load_task
from molebench.core.models import load_base
from molebench.core.scoring import generate
from molebench.core.stages import base_model
from molebench.core.training import TrainConfig, Trainer, answer_logprobs, autocast


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(config: dict, task: str, repeats: int, smoke: bool = True) -> list[tuple[str, float, str]]:
    """(name, value, unit) rows. The smoke DAG runs the Snakefile of the current folder (the repository root)."""
    rows = []
    if smoke:
        if not Path("Snakefile").is_file():
            raise FileNotFoundError("no Snakefile here: run `molebench bench` from the repository root, or pass "
                                    "--skip-smoke")
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "snakemake", "reproduce", "--cores", "2", "--configfile", "config/smoke.yaml",
                   "--config", f"results_dir={tmp}/results", f"reports_dir={tmp}/reports"]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            rows.append(("smoke DAG, 2 cores, from nothing", time.perf_counter() - start, "s"))
    base_dir = Path(config["results_dir"]) / "base"
    if not base_dir.is_dir():
        base_model(config["model"], str(base_dir))
    model, tokenizer = load_base(base_dir)
    spec = load_task(task)
    splits, _ = build_splits(spec, 16, 16, 0, config["data"]["raw_dir"])
    train_cfg = TrainConfig.from_dict(config["train"])
    peft_model = get_peft_model(model, LoraConfig(**config["lora"]))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    trainer = Trainer(train_cfg, seed=0)
    _, batch = next(trainer.batches(tokenizer, splits["train"], False))
    opt = torch.optim.AdamW(params, lr=train_cfg.lr)

    def step(bf16: bool):
        with autocast(bf16, peft_model.device):
            loss = -answer_logprobs(peft_model, batch).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()

    tokens = int(batch["attention_mask"].sum())
    rows.append((f"LoRA training step, batch {train_cfg.batch_size} ({tokens} tokens), {task}",
                 median_time(lambda: step(False), repeats), "s"))
    rows.append(("the same step with bf16 autocast (train: {autocast_bf16: true})",
                 median_time(lambda: step(True), repeats), "s"))
    peft_model.eval()
    prompts = [r["input"] for r in splits["test"][: config["eval"]["batch_size"]]]
    name = (f"scoring batch: greedy generation of {len(prompts)} prompts, up to {spec.max_new_tokens} tokens, each "
            "stopped at its first newline")
    rows.append((name, median_time(lambda: generate(peft_model, tokenizer, prompts, spec.max_new_tokens,
                                                    config["eval"]["max_input_tokens"], len(prompts)), repeats), "s"))
    ids = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    rows.append(("the same batch generated to max_new_tokens (no newline stop; the answers are the same)",
                 median_time(lambda: peft_model.generate(**ids, max_new_tokens=spec.max_new_tokens, do_sample=False,
                                                         pad_token_id=tokenizer.pad_token_id), repeats), "s"))
    return rows
