"""Tokenisation shared by training and scoring, the one training loop, and per-task LoRA training with PEFT."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, ValidationError, model_validator
from tqdm.auto import tqdm

from molebench.core.errors import ConfigError
from molebench.core.io import atomic_path, native_bf16
from molebench.core.models import prompt_positions
from molebench.core.section import Section, problems


def _defaults_in_descriptions(schema: dict) -> None:
    """The JSON schema of a train section fills no default: a variant's `train:` is merged over the config's before
    these defaults apply (molebench.nlp.stages), so each default is only named in its field's description."""
    for prop in schema["properties"].values():
        prop["description"] += f" (default {json.dumps(prop.pop('default', None))})"


class TrainConfig(Section):
    """Training of a LoRA, a composition or a router: the config's `train:` sections (a variant's `train:` overrides
    the config's key by key); what is left out takes the default given here."""

    model_config = ConfigDict(json_schema_extra=_defaults_in_descriptions)

    steps: int = Field(60, ge=1, description="optimiser steps (ignored when `epochs` is given; give one of the two)")
    epochs: int = Field(None, ge=1, description="passes over the training records instead of `steps`: the run takes "
                                                "epochs x ceil(records / batch_size) steps, counted from the records it "
                                                "is given (a recipe written in epochs)")
    batch_size: int = Field(8, ge=1, description="records per step")
    lr: float = Field(5e-4, gt=0, description="AdamW learning rate")
    schedule: Literal["constant", "linear"] = Field(
        "constant", description="learning rate over the run: constant, or linear decay from lr to 0 at the last step "
                                "with no warmup (the Hugging Face Trainer's default)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    grad_clip: float = Field(1.0, gt=0, description="gradient norm clipped to this")
    max_input_tokens: int = Field(160, ge=8, description="prompt tokens kept (the end of a longer prompt)")
    max_target_tokens: int = Field(64, ge=1, description="answer tokens trained on")
    autocast_bf16: bool | Literal["auto"] = Field(
        False, description="bf16 autocast on CPU or GPU; parameters stay fp32. auto: only where the device computes "
                           "bf16 in hardware (a CPU with AVX512-BF16 or AMX, a GPU with bf16), fp32 elsewhere; "
                           "what was used is recorded with the run")
    checkpoint_every: int = Field(10, ge=1, description="steps between resumable training checkpoints (when the "
                                                       "caller gives a checkpoint folder)")

    @model_validator(mode="after")
    def _one_duration(self):
        if {"steps", "epochs"} <= self.model_fields_set and self.epochs is not None:
            raise ValueError(f"give steps ({self.steps}) or epochs ({self.epochs}), not both: a recipe written in "
                             f"epochs takes its steps from the number of training records")
        return self

    def total_steps(self, records: int) -> int:
        """The run's optimiser steps for this many training records."""
        return self.epochs * math.ceil(records / self.batch_size) if self.epochs else self.steps

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate of optimiser step `step` (0-based) of `total`; a function of the step, so a resumed run
        needs no scheduler state."""
        return self.lr * (1 - step / total) if self.schedule == "linear" else self.lr

    @classmethod
    def from_dict(cls, values: dict, where: str = "train") -> TrainConfig:
        """A train section (merged with its overrides); an unknown key or a bad value raises ConfigError naming it."""
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise ConfigError(problems(err, where)) from None


def merge_train(section: dict, override: dict | None) -> dict:
    """A train section with a variant's overrides, key by key; an override that gives a duration (steps or epochs)
    replaces the section's, so that a variant trained in steps can run over a config trained in epochs."""
    override = override or {}
    if {"steps", "epochs"} & set(override):
        section = {k: v for k, v in section.items() if k not in ("steps", "epochs")}
    return {**section, **override}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


BF16 = bool | Literal["auto"]  # a bf16 setting of training or scoring


def uses_bf16(setting: BF16, device: torch.device | str = "cpu") -> bool:
    """The setting as decided on this device: `auto` is bf16 only where the hardware computes it natively."""
    return native_bf16(torch.device(device).type) if setting == "auto" else bool(setting)


def autocast(setting: BF16, device: torch.device | str = "cpu"):
    if not uses_bf16(setting, device):
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


# ---- tokenisation --------------------------------------------------------------------------------------------

def is_seq2seq(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def encode_prompt(tokenizer, prompt: str, max_tokens: int) -> list[int]:
    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    return ids[-max_tokens:]  # keep the end of an over-long prompt: the question sits there


def count_over_long(tokenizer, texts: list[str], max_tokens: int, answer: bool = False) -> int:
    """How many texts the encoders above cut short: reported with every training and scoring run, never silent."""
    lengths = [len(encode_answer(tokenizer, t, 10**9, add_eos=False) if answer else tokenizer(t)["input_ids"])
               for t in texts]
    return sum(n > max_tokens for n in lengths)


def encode_answer(tokenizer, answer: str, max_tokens: int, add_eos: bool = True) -> list[int]:
    # answers follow the prompt after one space, in training and in scoring alike
    ids = tokenizer(" " + answer, add_special_tokens=False)["input_ids"][:max_tokens]
    return ids + [tokenizer.eos_token_id] if add_eos else ids


def collate(tokenizer, pairs: list[tuple[list[int], list[int]]], seq2seq: bool, pad_left: bool = False) -> dict:
    """Batch (prompt ids, answer ids) pairs for teacher forcing.

    Returns model inputs plus `labels` (-100 outside answers) and `prompt_mask` (1 at prompt tokens of input_ids).
    """
    pad = tokenizer.pad_token_id
    if seq2seq:
        enc = _pad([p for p, _ in pairs], pad, pad_left)
        dec = _pad([a for _, a in pairs], -100, False)
        return {"input_ids": enc["ids"], "attention_mask": enc["mask"], "labels": dec["ids"], "prompt_mask": enc["mask"]}
    batch = _pad([p + a for p, a in pairs], pad, pad_left)
    labels = torch.full_like(batch["ids"], -100)
    prompt_mask = torch.zeros_like(batch["mask"])
    width = batch["ids"].shape[1]
    for i, (p, a) in enumerate(pairs):
        start = width - len(p) - len(a) if pad_left else 0
        prompt_mask[i, start:start + len(p)] = 1
        labels[i, start + len(p):start + len(p) + len(a)] = torch.tensor(a)
    return {"input_ids": batch["ids"], "attention_mask": batch["mask"], "labels": labels, "prompt_mask": prompt_mask}


def _pad(seqs: list[list[int]], value: int, left: bool) -> dict:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), value, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, sl] = torch.tensor(s, dtype=torch.long)
        mask[i, sl] = 1
    return {"ids": ids, "mask": mask}


def answer_logprobs(model, batch: dict) -> torch.Tensor:
    """Per-token log-probabilities of the labelled tokens, (batch, positions), 0 where unlabelled.

    Causal models compute logits only from the first answer position of the batch on: the LM head over a 49k vocabulary
    is a large share of a small model's compute and memory, and prompt positions need none of it.
    """
    batch = {k: v.to(model.device) for k, v in batch.items()}
    labels = batch["labels"]
    with prompt_positions(batch["prompt_mask"]):
        if is_seq2seq(model):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
            targets = labels
        else:
            first = int((labels != -100).int().argmax(1).min())
            keep = torch.arange(max(first - 1, 0), labels.shape[1] - 1)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           logits_to_keep=keep).logits
            targets = labels[:, keep + 1]
    mask = targets != -100
    logits = logits.float()
    picked = logits.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
    return picked * mask


def answer_loss(model, batch: dict) -> torch.Tensor:
    """Cross-entropy per answer token, averaged over the batch's answer tokens (as HF models' `labels` loss)."""
    return -answer_logprobs(model, batch).sum() / (batch["labels"] != -100).sum()


# ---- the training loop ---------------------------------------------------------------------------------------

KILL_AT_STEP = "MOLEBENCH_KILL_AT_STEP"  # fault injection: SIGKILL this process when it reaches that step


class Trainer:
    """Trains the given parameters of `model` on answer tokens (plus an optional extra loss), seeded and logged.

    With a checkpoint folder, the trained parameters, optimizer state, RNG state, step and loss curve are saved
    atomically every `config.checkpoint_every` steps; a run that finds a matching checkpoint resumes from it and ends with the
    same weights, bit for bit, as a run that was never interrupted (the data order is replayed from the seed).
    """

    def __init__(self, config: TrainConfig, seed: int, log_path: str | Path | None = None, desc: str = "train",
                 checkpoint_dir: str | Path | None = None):
        self.config, self.seed, self.log_path, self.desc = config, seed, log_path, desc
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None

    def batch_indices(self, n: int):
        """Endless record-index batches: epochs shuffled by one seeded stream, so any step can be replayed."""
        rng = random.Random(self.seed)
        order: list[int] = []
        while True:
            if len(order) < self.config.batch_size:
                epoch = list(range(n))
                rng.shuffle(epoch)
                order += epoch
            idx, order = order[: self.config.batch_size], order[self.config.batch_size:]
            yield idx

    def batches(self, tokenizer, records: list[dict], seq2seq: bool, skip: int = 0):
        cfg = self.config
        encoded = [(encode_prompt(tokenizer, r["input"], cfg.max_input_tokens),
                    encode_answer(tokenizer, r["references"][0], cfg.max_target_tokens)) for r in records]
        indices = self.batch_indices(len(encoded))
        for _ in range(skip):
            next(indices)
        for idx in indices:
            yield idx, collate(tokenizer, [encoded[i] for i in idx], seq2seq)

    def _fingerprint(self, records: list[dict], params: list[torch.nn.Parameter], lr_scale: float) -> dict:
        return {"config": self.config.model_dump(), "lr_scale": lr_scale, "seed": self.seed, "records": len(records),
                "shapes": [list(p.shape) for p in params]}

    def _save(self, step: int, params, opt, curve: list[dict], fingerprint: dict) -> None:
        state = {"step": step, "params": [p.detach().clone() for p in params], "optimizer": opt.state_dict(),
                 "torch_rng": torch.get_rng_state(), "curve": curve, "fingerprint": fingerprint}
        with atomic_path(self.checkpoint_dir / "checkpoint.pt") as tmp:
            torch.save(state, tmp)

    def _resume(self, params, opt, fingerprint: dict) -> tuple[int, list[dict]]:
        path = self.checkpoint_dir / "checkpoint.pt" if self.checkpoint_dir else None
        if path is None or not path.is_file():
            return 0, []
        state = torch.load(path, weights_only=True)
        if state["fingerprint"] != fingerprint:
            print(f"{self.desc}: ignoring {path}: it was written for another config or data", file=sys.stderr)
            return 0, []
        with torch.no_grad():
            for p, saved in zip(params, state["params"], strict=True):
                p.copy_(saved)
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        print(f"{self.desc}: resuming from step {state['step']} ({path})", file=sys.stderr)
        return state["step"], state["curve"]

    def write_log(self, curve: list[dict]) -> None:
        if self.log_path:
            Path(self.log_path).write_text("".join(json.dumps(c) + "\n" for c in curve))

    def train(self, model, tokenizer, records: list[dict], params: list[torch.nn.Parameter], extra_loss=None,
              step_metrics=None, on_batch=None, lr_scale: float = 1.0) -> dict:
        """extra_loss: optional fn() -> scalar tensor, read after each forward (MoLE's balance loss).
        step_metrics: optional fn() -> dict, read after each step and logged with it (MoLE's gate entropy).
        on_batch: optional fn(record indices), called before each forward (RAMoLE routes each sample's LoRAs).
        lr_scale: the method's factor on the configured lr (MoLE's gates over many LoRAs); logged per step."""
        cfg = self.config
        if not records:
            raise ValueError("no training records")
        total = cfg.total_steps(len(records))
        opt = torch.optim.AdamW(params, lr=cfg.lr * lr_scale, weight_decay=cfg.weight_decay)
        fingerprint = self._fingerprint(records, params, lr_scale)
        first, curve = self._resume(params, opt, fingerprint)
        batches = self.batches(tokenizer, records, is_seq2seq(model), skip=first)
        kill_at = int(os.environ.get(KILL_AT_STEP, "-1"))
        start = time.time()
        model.train()
        bar = tqdm(range(first, total), desc=self.desc, mininterval=5)
        for step in bar:
            if step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            idx, batch = next(batches)
            if on_batch:
                on_batch(idx)
            with autocast(cfg.autocast_bf16, model.device):
                task_loss = answer_loss(model, batch)
                extra = extra_loss() if extra_loss else torch.zeros(())
                extra = torch.as_tensor(extra)
                loss = task_loss + extra
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.desc}: loss is {loss.item()} at step {step} on records "
                                         f"{[records[i]['id'] for i in idx]}; lower the learning rate or check the data")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            lr = cfg.lr_at(step, total) * lr_scale
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()
            opt.zero_grad(set_to_none=True)
            curve.append({"step": step, "lr": lr, "loss": round(loss.item(), 6), "task_loss": round(task_loss.item(), 6),
                          "extra_loss": round(extra.item(), 6), **(step_metrics() if step_metrics else {})})
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if self.checkpoint_dir and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < total:
                self._save(step + 1, params, opt, curve, fingerprint)
        model.eval()
        self.write_log(curve)
        return {"steps": total, "epochs": round(total * cfg.batch_size / len(records), 2), "resumed_from_step": first, "seconds": round(time.time() - start, 2),
                "records": len(records),
                "truncated_prompts": count_over_long(tokenizer, [r["input"] for r in records], cfg.max_input_tokens),
                "truncated_answers": count_over_long(tokenizer, [r["references"][0] for r in records],
                                                     cfg.max_target_tokens, answer=True),
                "trainable_params": sum(p.numel() for p in params),
                "bf16": uses_bf16(cfg.autocast_bf16, model.device),
                "first_loss": curve[0]["loss"], "final_loss": curve[-1]["loss"]}


def train_lora(model, tokenizer, records: list[dict], lora: dict, config: TrainConfig, seed: int, out_dir: Path,
               desc: str = "lora", checkpoint_dir: Path | None = None) -> dict:
    """Train one LoRA with PEFT and save it as a standard adapter folder in `out_dir` (which must not exist yet)."""
    from peft import LoraConfig, TaskType, get_peft_model

    seed_everything(seed)
    task_type = TaskType.SEQ_2_SEQ_LM if is_seq2seq(model) else TaskType.CAUSAL_LM
    peft_model = get_peft_model(model, LoraConfig(task_type=task_type, **lora))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config, seed, out_dir / "train_log.jsonl", desc, checkpoint_dir)
    info = trainer.train(peft_model, tokenizer, records, params)
    peft_model.save_pretrained(out_dir)
    return info
