"""The task's own LoRA, applied through PEFT: the oracle a composition of LoRAs is compared against."""


from molebench.core.method import Method, register_method


@register_method("single")
class Single(Method):
    description = "the evaluated task's own LoRA (oracle), merged into the base through PEFT"
    per_task = True
    reference = "single_lora"

    def build(self, base, experts):
        from peft import PeftModel

        if len(experts) != 1:
            raise ValueError(f"single takes exactly one LoRA, got {len(experts)}")
        # merged: scoring then runs at the base model's speed, and the result is the same as the unmerged adapter
        return PeftModel.from_pretrained(base, str(experts[0].path)).merge_and_unload().eval()
