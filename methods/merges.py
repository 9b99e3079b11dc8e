"""PEFT's model merges of LoRAs (`add_weighted_adapter`), used as they are, never re-implemented.

Space, as PEFT 0.21 computes them: `cat` and `svd` combine the weight updates B_i A_i (weight space; `svd` truncates
to rank `svd_rank`); `peft-linear`, `ties`, `dare-linear`, `dare-ties` and `magnitude-prune` combine the A and the
B factors separately with weights sqrt(w_i * scaling_i) (factor space: cross terms B_i A_j appear), so they need
LoRAs of equal rank. The merged model is scored like the base model: no extra cost per token.

Default weights: 1/N, so that the merge is an average like NLA; TIES and DARE-TIES already average the agreeing
entries (disjoint mean), so their default weight is 1 (the TIES paper's lambda = 1).
"""

import dataclasses

from molebench.core.adapters import EQUAL_RANK_COMBINATIONS, peft_combine
from molebench.core.method import Method, MethodConfig, register_method

SIGN_METHODS = ("total", "frequency")


@dataclasses.dataclass
class MergeConfig(MethodConfig):
    weight: float | None = dataclasses.field(default=None, metadata={
        "help": "weight of every LoRA; null: 1/N (1 for ties and dare-ties)"})
    density: float = dataclasses.field(default=0.5, metadata={
        "help": "fraction of entries kept (ties, dare-linear, dare-ties, magnitude-prune)"})
    majority_sign_method: str = dataclasses.field(default="total", metadata={
        "help": f"sign election of ties and dare-ties: {SIGN_METHODS}"})
    svd_rank: int | None = dataclasses.field(default=None, metadata={"help": "rank of the svd merge; null: max rank"})

    def __post_init__(self):
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if self.majority_sign_method not in SIGN_METHODS:
            raise ValueError(f"majority_sign_method must be one of {SIGN_METHODS}, got {self.majority_sign_method!r}")
        if self.svd_rank is not None and self.svd_rank < 1:
            raise ValueError(f"svd_rank must be >= 1, got {self.svd_rank}")


class PeftMerge(Method):
    config_class = MergeConfig
    combination_type: str
    averages_itself = False  # ties-style merges divide by the number of agreeing LoRAs themselves

    @classmethod
    def equal_ranks(cls, config):
        return cls.combination_type in EQUAL_RANK_COMBINATIONS

    def build(self, base, experts):
        cfg = self.config
        default = 1.0 if self.averages_itself else 1.0 / len(experts)
        weights = [default if cfg.weight is None else cfg.weight] * len(experts)
        kwargs = {}
        if self.combination_type in ("ties", "dare_linear", "dare_ties", "magnitude_prune"):
            kwargs["density"] = cfg.density
        if self.combination_type in ("ties", "dare_ties"):
            kwargs["majority_sign_method"] = cfg.majority_sign_method
        if self.combination_type == "svd":
            kwargs["svd_rank"] = cfg.svd_rank
        model, self.lora = peft_combine(base, experts, weights, self.combination_type, **kwargs)
        return model


def _register(name: str, combination_type: str, description: str, averages_itself: bool = False) -> None:
    attrs = {"combination_type": combination_type, "description": description, "averages_itself": averages_itself}
    register_method(name)(type(f"Merge_{combination_type}", (PeftMerge,), attrs))


_register("peft-linear", "linear", "PEFT linear merge: weighted sum of the A and of the B factors (factor space)")
_register("cat", "cat", "PEFT cat merge: concatenated factors, exactly the weighted sum of B_i A_i (weight space)")
_register("svd", "svd", "PEFT svd merge: weighted sum of B_i A_i truncated by SVD to svd_rank (weight space)")
_register("ties", "ties", "PEFT TIES merge: trim to density, elect signs, disjoint mean (factor space)", True)
_register("dare-linear", "dare_linear", "PEFT DARE merge: random drop to density, rescale, weighted sum (factor space)")
_register("dare-ties", "dare_ties", "PEFT DARE-TIES merge: random drop, rescale, TIES sign election (factor space)",
          True)
_register("magnitude-prune", "magnitude_prune", "PEFT magnitude-prune merge: keep the largest entries, weighted sum "
          "(factor space)")
