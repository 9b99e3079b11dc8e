"""Unsupervised CLIP-guided training of MoLE's gates for text-to-image (MoLE Section 4.1, L_D of Eq. 16).

Each iteration samples images for a batch of the composition's prompts with the gated model, keeping the graph of the
last `grad_steps` DDPM steps (truncated backpropagation, as the official code), and scores them with a frozen CLIP:

    global  1 - cos(CLIP_image(x), CLIP_text(prompt))                      the whole prompt
    local   mean over the prompt's subjects of 1 - cos(CLIP_image(x), mean CLIP_image(subject's references))
    L       global + local + alpha * L_balance                             (L_balance from MoLE, alpha 0.5)

The paper names local and global CLIP guidance without defining them; the definitions above are this project's
(docs/methods.md). The trainer has the interface `MoLE.fit` expects, so the same MoLE plug-in trains on pipelines.
"""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from molebench.t2i.metrics import image_embeddings, text_embeddings
from molebench.t2i.sampling import generate


@dataclasses.dataclass
class GateTrainingConfig:
    steps: int = dataclasses.field(default=400, metadata={"help": "training iterations (paper: 400)"})
    batch_size: int = dataclasses.field(default=2, metadata={"help": "prompts per iteration (paper: 2)"})
    lr: float = dataclasses.field(default=1e-5, metadata={"help": "Adam learning rate of the gates (paper: 1e-5)"})
    ddpm_steps: int = dataclasses.field(default=50, metadata={"help": "DDPM sampling steps (paper: 50)"})
    grad_steps: int = dataclasses.field(default=1, metadata={
        "help": "last sampling steps that keep their graph (truncated backpropagation)"})
    guidance: float = dataclasses.field(default=7.5, metadata={"help": "classifier-free guidance scale"})
    local_weight: float = dataclasses.field(default=1.0, metadata={"help": "weight of the local (per-subject) term"})
    global_weight: float = dataclasses.field(default=1.0, metadata={"help": "weight of the global (prompt) term"})

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.ddpm_steps < 1:
            raise ValueError("gate training steps, batch_size and ddpm_steps must be positive")
        if not 1 <= self.grad_steps <= self.ddpm_steps:
            raise ValueError(f"grad_steps must be in 1..ddpm_steps ({self.ddpm_steps}), got {self.grad_steps}")


class ClipGuidedTrainer:
    """`train(model, tokenizer, records, params, extra_loss, step_metrics)` as `MoLE.fit` calls it. Records are
    {"prompt": str, "subjects": [subject names]}; `references` maps a subject to its reference images in [0, 1]."""

    def __init__(self, cfg: GateTrainingConfig, clip, clip_tokenizer, pixels: dict,
                 references: dict[str, torch.Tensor], seed: int):
        self.cfg, self.clip, self.clip_tokenizer, self.pixels, self.seed = cfg, clip, clip_tokenizer, pixels, seed
        with torch.no_grad():
            self.reference_emb = {name: F.normalize(F.normalize(image_embeddings(clip, pixels, images), dim=-1)
                                                    .mean(0), dim=-1) for name, images in references.items()}
        self.config = SimpleNamespace(max_input_tokens=None)  # MoLE.fit reads it for the NLP gate_length check

    def loss(self, images: torch.Tensor, records: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        image_emb = F.normalize(image_embeddings(self.clip, self.pixels, images), dim=-1)
        with torch.no_grad():
            text_emb = F.normalize(text_embeddings(self.clip, self.clip_tokenizer, [r["prompt"] for r in records]),
                                   dim=-1)
        global_term = 1 - (image_emb * text_emb).sum(-1).mean()
        local_terms = [1 - image_emb[i] @ self.reference_emb[s] for i, r in enumerate(records) for s in r["subjects"]]
        return global_term, torch.stack(local_terms).mean()

    def train(self, model, tokenizer, records: list[dict], params, extra_loss, step_metrics,
              lr_scale: float = 1.0) -> dict:
        """The NLP Trainer's interface (MoLE.fit calls either); lr_scale is MoLE's factor on the gates' lr."""
        cfg = self.cfg
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.Adam(params, lr=cfg.lr * lr_scale)
        history, start = [], time.time()
        for step in range(cfg.steps):
            batch = [records[i] for i in rng.integers(len(records), size=cfg.batch_size)]
            images = generate(model, [r["prompt"] for r in batch], seed=self.seed * 100_003 + step,
                              steps=cfg.ddpm_steps, guidance=cfg.guidance, grad_steps=cfg.grad_steps)
            global_term, local_term = self.loss(images, batch)
            balance = extra_loss()
            loss = cfg.global_weight * global_term + cfg.local_weight * local_term + balance
            opt.zero_grad()
            loss.backward()
            opt.step()
            balance = float(torch.as_tensor(balance).detach())  # a tensor with a gradient, or 0.0 without the loss
            history.append({"step": step + 1, "loss": round(loss.item(), 6), "global": round(global_term.item(), 6),
                            "local": round(local_term.item(), 6), "balance": round(balance, 6), **step_metrics()})
        return {"steps": cfg.steps, "seconds": round(time.time() - start, 2), "history": history}
