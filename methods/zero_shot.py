"""The base model alone, no LoRA: the floor every composition must beat."""


from molebench.core.method import Method, register_method


@register_method("zero-shot")
class ZeroShot(Method):
    description = "base model without any LoRA (reference point)"
    uses_experts = False
    per_task = True
    seeded = False
    reference = "zero_shot"

    def build(self, base, experts):
        return base
