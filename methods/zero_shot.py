"""The base model alone, no LoRA: the floor every composition must beat."""

from molebench.methods import register_method

from molebench.method import Method


@register_method("zero-shot")
class ZeroShot(Method):
    description = "base model without any LoRA (reference point)"
    uses_experts = False
    per_task = True
    seeded = False

    def build(self, base, experts):
        return base
