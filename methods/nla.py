"""Normalised linear arithmetic (MoLE Eq. 2): every LoRA with the same weight 1/N, in one of three spaces.

- output: y = W x + sum_i w_i B_i A_i x, through the LoRA bank. For fixed weights this equals the weight space up to
  float rounding (a test checks it); it is the reference point of input-dependent mixing (MoLE at uniform gates).
- weight: W + sum_i w_i B_i A_i, through PEFT `add_weighted_adapter(combination_type="cat")` (exact, rank N*r).
- factor: PEFT `combination_type="linear"`: (sum_i sqrt(w_i) B_i)(sum_i sqrt(w_i) A_i), cross terms included
  (PEFT's square-root weighting makes one LoRA at weight w equal w * its update). Needs equal ranks.
Every result is labelled with its space through the variant name and the saved method config.
"""

import dataclasses

from molebench.methods import register_method

from molebench.method import Method, MethodConfig

SPACES = ("output", "weight", "factor")


@dataclasses.dataclass
class NLAConfig(MethodConfig):
    space: str = dataclasses.field(default="output", metadata={"help": f"where LoRAs are summed: one of {SPACES}"})

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"nla: space must be one of {SPACES}, got {self.space!r}")


@register_method("nla")
class NLA(Method):
    description = "normalised linear arithmetic (Eq. 2), weights 1/N, in output, weight or factor space"
    config_class = NLAConfig

    def build(self, base, experts):
        weights = [1.0 / len(experts)] * len(experts)
        if self.config.space == "output":
            import torch

            from molebench.bank import inject

            w = torch.tensor(weights)
            inject(base, experts, lambda layer, x, h: layer.bank.mix(h, w.to(h.device)))
            return base.eval()
        return peft_weighted(base, experts, weights, "cat" if self.config.space == "weight" else "linear")


def peft_weighted(base, experts, weights, combination_type: str, **kwargs):
    """Load every expert into one PeftModel, combine with PEFT, merge for scoring."""
    from peft import PeftModel

    if combination_type == "linear" and len({e.rank for e in experts}) > 1:
        raise ValueError("factor-space (linear) combination needs LoRAs of equal rank; use space: weight")
    names = [f"expert{i}" for i in range(len(experts))]
    model = PeftModel.from_pretrained(base, str(experts[0].path), adapter_name=names[0])
    for name, expert in zip(names[1:], experts[1:]):
        model.load_adapter(str(expert.path), adapter_name=name)
    model.add_weighted_adapter(names, weights, adapter_name="combined", combination_type=combination_type, **kwargs)
    model.set_adapter("combined")
    return model.merge_and_unload(adapter_names=["combined"]).eval()
