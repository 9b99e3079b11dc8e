"""PEMs (Zhang et al., 2023): arithmetic of parameter-efficient modules, addition and negation.

    addition:  theta = lambda * sum_i theta_i        element-wise on each LoRA's parameters {A_i, B_i}
    negation:  (-) theta_i = {A_i, -B_i}              the LoRA's update B_i A_i changes sign
    lambda     chosen from a grid by the loss on held-out examples, as PEMs tunes its weight on validation data

PEMs adds two modules as lambda * theta_1 + (1 - lambda) * theta_2; for N modules it gives no rule, so one shared
lambda = scale / N is searched (scale 1 is PEMs' equal-weight average; scale N the plain sum). The held-out
examples come from the training split of the group's tasks (the tasks have no separate validation split), and the
loss stands in for PEMs' task metric, which would cost a generation pass per candidate.
"""

import dataclasses
import random

import torch
from molebench.methods.lorahub import FactorSum, encode_batch

from molebench.core.method import MethodConfig, register_method
from molebench.core.training import answer_loss


@dataclasses.dataclass
class PEMsConfig(MethodConfig):
    scales: list[float] = dataclasses.field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0], metadata={
        "help": "candidate lambda * N; each LoRA gets weight lambda"})
    negate: list[str] = dataclasses.field(default_factory=list, metadata={
        "help": "names (tasks) of LoRAs to subtract instead of add"})
    n_validation: int = dataclasses.field(default=32, metadata={"help": "held-out examples that choose lambda"})

    def __post_init__(self):
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError(f"scales must be a non-empty list of positive numbers, got {self.scales}")
        if self.n_validation < 1:
            raise ValueError(f"n_validation must be >= 1, got {self.n_validation}")


@register_method("pems")
class PEMs(FactorSum):
    description = "PEMs: LoRA addition (and negation) with one weight lambda chosen on held-out examples, merged"
    config_class = PEMsConfig

    def build(self, base, experts):
        names = [e.name for e in experts]
        unknown = sorted(set(self.config.negate) - set(names))
        if unknown:
            raise ValueError(f"pems: negate names {unknown}, which are not LoRAs of this group: {names}")
        self.signs = torch.tensor([-1.0 if n in self.config.negate else 1.0 for n in names])
        return super().build(base, experts)

    def set_lambda(self, model, lam: float) -> None:
        model.factor_weights.a.fill_(lam)
        model.factor_weights.b.copy_(lam * self.signs)

    def fit(self, model, tokenizer, train, trainer):
        n = len(self.signs)
        held_out = random.Random(trainer.seed).sample(train, min(self.config.n_validation, len(train)))
        size = trainer.config.batch_size
        batches = [encode_batch(tokenizer, model, held_out[i:i + size], trainer) for i in range(0, len(held_out), size)]
        curve = []
        for scale in self.config.scales:
            self.set_lambda(model, scale / n)
            with torch.no_grad():
                loss = sum(answer_loss(model, b).item() * len(b["input_ids"]) for b in batches) / len(held_out)
            curve.append({"scale": scale, "lambda": scale / n, "loss": round(loss, 6)})
        best = min(curve, key=lambda c: c["loss"])
        self.set_lambda(model, best["lambda"])
        trainer.write_log(curve)
        return {"lambda": best["lambda"], "validation": curve, "held_out": [r["id"] for r in held_out],
                "trainable_params": 1}  # one lambda, chosen on data
