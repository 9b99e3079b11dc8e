"""Linear arithmetic over LoRAs (MoLE Eq. 1 and Eq. 2), in one of three spaces.

- `linear`: plain sum, every weight 1 (Eq. 1).
- `nla`: normalised sum, every weight 1/N (Eq. 2).

Spaces, each result labelled with its space through the variant name and the saved method config:
- output: y = W x + sum_i w_i B_i A_i x, through the LoRA bank. For fixed weights this equals the weight space up to
  float rounding (a test checks it); it is the reference point of input-dependent mixing (MoLE at uniform gates).
- weight: W + sum_i w_i B_i A_i, through PEFT `add_weighted_adapter(combination_type="cat")` (exact, rank N*r).
- factor: PEFT `combination_type="linear"`: (sum_i sqrt(w_i) B_i)(sum_i sqrt(w_i) A_i), cross terms included
  (PEFT's square-root weighting makes one LoRA at weight w equal w * its update). Needs equal ranks.
"""

import abc
import dataclasses

import torch

from molebench.core.adapters import peft_combine
from molebench.core.bank import inject
from molebench.core.method import Method, MethodConfig, register_method

SPACES = ("output", "weight", "factor")


@dataclasses.dataclass
class ArithmeticConfig(MethodConfig):
    space: str = dataclasses.field(default="output", metadata={"help": f"where LoRAs are summed: one of {SPACES}"})

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")


class Arithmetic(Method):
    config_class = ArithmeticConfig

    @classmethod
    def equal_ranks(cls, config):
        return config.space == "factor"

    @classmethod
    def pipeline_problem(cls, config):
        if config.space != "output":
            return "pipelines compose LoRAs in output space only (the PEFT weight/factor merges need one PEFT model)"
        return None

    @abc.abstractmethod
    def weights(self, n: int) -> list[float]:
        """The weight of each of n LoRAs."""

    def build(self, base, experts):
        weights = self.weights(len(experts))
        if self.config.space == "output":
            w = torch.tensor(weights)
            layers = inject(base, experts, lambda layer, x: layer.bank.mix(layer.bank.low_rank(x), w.to(x.device)))
            # the weighted sum of B_i A_i is the concatenated LoRA [w_i B_i] [A_i] (rank N*r, padding rows zero)
            self.lora = {layer.name: (layer.bank.a, (layer.bank.b * w.view(-1, 1, 1).to(layer.bank.b)).flatten(0, 1).T)
                         for layer in layers}
            return base.eval()
        model, self.lora = peft_combine(base, experts, weights, "cat" if self.config.space == "weight" else "linear")
        return model


@register_method("linear")
class Linear(Arithmetic):
    description = "linear arithmetic (Eq. 1): the plain sum of the LoRAs, in output, weight or factor space"

    def weights(self, n):
        return [1.0] * n


@register_method("nla")
class NLA(Arithmetic):
    description = "normalised linear arithmetic (Eq. 2), weights 1/N, in output, weight or factor space"

    def weights(self, n):
        return [1.0 / n] * n
