"""LoraHub (Huang et al., 2023): a gradient-free search for one weight per LoRA, on a few examples.

    A = sum_i w_i A_i,  B = sum_i w_i B_i                  the LoRA factors, weighted (cross terms B_i A_j included)
    objective(w) = CE(few examples) / n_examples + 0.05 * mean_i |w_i|
    w* = nevergrad NGOpt, w in [-1.5, 1.5]^N, 40 evaluations from w = 0; then merged into the base weights

As the official code (`lorahub` 0.1.0, `get_score`): the cross-entropy of the one batch of examples is divided by the
number of examples, which the paper's "CE + 0.05 mean|w|" does not say; tests/test_baselines.py checks our objective
against the package's on a tiny T5. Departures:
- Each candidate w is evaluated without touching the model's weights: the LoRA bank forms the one rank-r LoRA
  (sum w_i A_i, sum w_i B_i) per layer from the stacked factors (the package copies a new state dict into the PEFT
  model per step; `molebench bench --lorahub` compares both with merge per step).
- The examples are drawn from the training split of the group's tasks (LoraHub: examples of the unseen target task).
- The pool is the group's LoRAs; more than `pool_size` are subsampled with the run's seed (LoraHub: 20 of 196).
"""

import dataclasses
import random

import numpy as np
import torch
from torch import nn

from molebench.core.bank import inject, merge_banks
from molebench.core.method import Method, MethodConfig, register_method
from molebench.core.training import answer_loss, collate, encode_answer, encode_prompt, is_seq2seq


class FactorSum(Method):
    """The LoRAs' factors summed with one weight per LoRA for the A's and one for the B's, held in
    `model.factor_weights` (buffers `a` and `b`), evaluated through the LoRA bank and merged once the weights are
    chosen. LoraHub and PEMs differ only in how they choose the weights."""

    trainable = True

    @classmethod
    def equal_ranks(cls, config):
        return True

    def build(self, base, experts):
        weights = nn.Module()
        weights.register_buffer("a", torch.zeros(len(experts), device=base.device))
        weights.register_buffer("b", torch.zeros(len(experts), device=base.device))
        inject(base, experts, lambda layer, x: layer.bank.factor_mix(x, weights.a, weights.b))
        base.add_module("factor_weights", weights)
        return base.eval()

    def trained_parameters(self, model):
        return {"factor_weights.a": model.factor_weights.a, "factor_weights.b": model.factor_weights.b}

    def load(self, model, in_dir):
        super().load(model, in_dir)
        w = model.factor_weights
        self.lora = {}

        def update(layer):
            a, b_t = layer.bank.factor_sum(w.a, w.b)
            self.lora[layer.name] = (a, b_t.T)  # the chosen weights make one rank-r LoRA
            return b_t.T @ a

        merge_banks(model, update)


def encode_batch(tokenizer, model, records: list[dict], trainer) -> dict:
    cfg = trainer.config
    pairs = [(encode_prompt(tokenizer, r["input"], cfg.max_input_tokens),
              encode_answer(tokenizer, r["references"][0], cfg.max_target_tokens)) for r in records]
    return collate(tokenizer, pairs, is_seq2seq(model))


@dataclasses.dataclass
class LoraHubConfig(MethodConfig):
    steps: int = dataclasses.field(default=40, metadata={"help": "objective evaluations (nevergrad budget)"})
    n_examples: int = dataclasses.field(default=5, metadata={"help": "few-shot examples in the objective"})
    pool_size: int = dataclasses.field(default=20, metadata={"help": "LoRAs sampled from a larger group"})
    bound: float = dataclasses.field(default=1.5, metadata={"help": "weights searched in [-bound, bound]"})
    l1: float = dataclasses.field(default=0.05, metadata={"help": "weight of mean |w| in the objective"})

    def __post_init__(self):
        for name in ("steps", "n_examples", "pool_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.bound <= 0 or self.l1 < 0:
            raise ValueError(f"bound must be > 0 and l1 >= 0, got {self.bound}, {self.l1}")


@register_method("lorahub")
class LoraHub(FactorSum):
    description = "LoraHub: gradient-free (nevergrad NGOpt) weights over the LoRA factors, on 5 examples, merged"
    config_class = LoraHubConfig

    def build(self, base, experts):
        if len(experts) > self.config.pool_size:  # seeded by the run's seed (the DAG seeds before build)
            keep = sorted(torch.randperm(len(experts))[: self.config.pool_size].tolist())
            experts = [experts[i] for i in keep]
        self.experts = [e.name for e in experts]
        return super().build(base, experts)

    def objective(self, model, batch: dict, n_examples: int, weights) -> float:
        w = torch.as_tensor(np.asarray(weights), dtype=torch.float32)
        model.factor_weights.a.copy_(w)
        model.factor_weights.b.copy_(w)
        with torch.no_grad():
            loss = answer_loss(model, batch).item()
        return loss / n_examples + self.config.l1 * float(w.abs().mean())

    def fit(self, model, tokenizer, train, trainer):
        import nevergrad as ng

        cfg = self.config
        if len(train) < cfg.n_examples:
            raise ValueError(f"lorahub needs {cfg.n_examples} examples, the group has {len(train)}")
        examples = random.Random(trainer.seed).sample(train, cfg.n_examples)
        batch = encode_batch(tokenizer, model, examples, trainer)
        n = model.factor_weights.a.numel()
        space = ng.p.Array(init=[0.0] * n, lower=[-cfg.bound] * n, upper=[cfg.bound] * n)
        space.random_state = np.random.RandomState(trainer.seed)
        optimizer = ng.optimizers.NGOpt(parametrization=space, budget=cfg.steps)
        curve = []
        for step in range(cfg.steps):
            candidate = optimizer.ask()
            value = self.objective(model, batch, len(examples), candidate.value)
            optimizer.tell(candidate, value)
            curve.append({"step": step, "loss": round(value, 6)})
        best = optimizer.provide_recommendation().value
        final = self.objective(model, batch, len(examples), best)
        trainer.write_log(curve)
        return {"steps": cfg.steps, "examples": [r["id"] for r in examples], "experts": self.experts,
                "weights": [round(float(w), 6) for w in best], "objective": round(final, 6),
                "trainable_params": n}
