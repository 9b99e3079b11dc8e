"""The base model with in-context examples and no LoRA: what the task's training data buys without training.

Each test prompt is preceded by `shots` examples (prompt, a space, the first reference) drawn with the run's seed
from the same task's training split and separated by blank lines. Few-shot prompts are long: give the variant an
`eval: {max_input_tokens: ...}` large enough (prompts cut short are counted in every score file).
"""

import dataclasses
import random

from molebench.methods.zero_shot import ZeroShot

from molebench.core.method import MethodConfig, register_method


@dataclasses.dataclass
class FewShotConfig(MethodConfig):
    shots: int = dataclasses.field(default=3, metadata={"help": "in-context examples before each test prompt"})

    def __post_init__(self):
        if self.shots < 1:
            raise ValueError(f"shots must be >= 1 (zero shots is the zero-shot method), got {self.shots}")


@register_method("few-shot")
class FewShot(ZeroShot):
    """Zero-shot's model and flags; only the prompts differ, and the examples drawn depend on the seed."""

    description = "base model with k in-context examples from the task's training split, no LoRA"
    config_class = FewShotConfig
    seeded = True

    def prompts(self, records, train, seed):
        if len(train) < self.config.shots:
            raise ValueError(f"few-shot needs {self.config.shots} training examples, the task has {len(train)}")
        shots = random.Random(seed).sample(train, self.config.shots)
        prefix = "".join(f"{r['input']} {r['references'][0]}\n\n" for r in shots)
        return [{**r, "input": prefix + r["input"]} for r in records]
