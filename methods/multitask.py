"""One LoRA trained on the union of the group's tasks: the multi-task reference point of a composition.

Same PEFT LoRA config (rank, alpha, target modules) as the group's per-task LoRAs, read from their adapter folders,
and the same training recipe (steps, batch, learning rate) as one per-task LoRA unless the variant overrides `train`.
The trained LoRA is saved as a standard PEFT adapter folder and merged into the base for scoring.

`active_layers` scores the trained LoRA with only the blocks of one depth range active (MoLE Table 5); a variant
with `scored_from: multitask` reuses that variant's trained LoRA instead of training its own.
"""

import dataclasses
import re

from molebench.core.adapters import AdapterError
from molebench.core.method import Method, MethodConfig, register_method

# a LoRA-wrapped module's stack and block index: model.layers.3.self_attn.q_proj | encoder.block.3.layer.0.SelfAttention.q
BLOCK_INDEX = re.compile(r"^(?:base_model\.model\.)?(.*?)\.(\d+)\.")


@dataclasses.dataclass
class MultitaskConfig(MethodConfig):
    active_layers: list[float] | None = dataclasses.field(default=None, metadata={
        "help": "[lo, hi]: at scoring, keep the LoRA only in the blocks whose depth (block index / blocks in its "
                "stack, in percent) lies in [lo, hi); training ignores it (MoLE Table 5)"})

    def __post_init__(self):
        layers = self.active_layers
        if layers is not None and (len(layers) != 2 or not 0 <= layers[0] < layers[1] <= 100):
            raise ValueError(f"multitask: active_layers must be [lo, hi] percents with 0 <= lo < hi <= 100, "
                             f"got {layers}")


@register_method("multitask")
class Multitask(Method):
    description = "one LoRA trained on the union of the group's training data (same rank and recipe as the LoRAs)"
    config_class = MultitaskConfig
    trainable = True

    def build(self, base, experts):
        from peft import LoraConfig, TaskType, get_peft_model

        configs = {e.path: LoraConfig.from_pretrained(e.path) for e in experts}
        shapes = {(c.r, c.lora_alpha, tuple(sorted(c.target_modules))) for c in configs.values()}
        if len(shapes) > 1:
            raise AdapterError(f"multitask copies the LoRA config of the group's LoRAs, but they differ "
                               f"(r, alpha, targets): {sorted(shapes)}; train the group's LoRAs with one config")
        config = next(iter(configs.values()))
        config.inference_mode = False
        config.task_type = TaskType.SEQ_2_SEQ_LM if base.config.is_encoder_decoder else TaskType.CAUSAL_LM
        return get_peft_model(base, config)

    def fit(self, model, tokenizer, train, trainer):
        return trainer.train(model, tokenizer, train, [p for p in model.parameters() if p.requires_grad])

    def save(self, model, out_dir):
        super().save(model, out_dir)
        model.save_pretrained(out_dir)  # also a standard adapter folder, usable as a LoRA anywhere

    def load(self, model, in_dir):
        super().load(model, in_dir)
        layers = getattr(self.config, "active_layers", None)  # MixLoRA's lora/dora subclasses have no such option
        if layers is not None:
            self._deactivate_outside(model, *layers)
        model.merge_and_unload()  # in place: scored at the base model's speed, with the base's parameters

    @staticmethod
    def _deactivate_outside(model, lo: float, hi: float) -> None:
        """Zero lora_B of the blocks outside [lo, hi) percent depth: their delta B A x is then exactly zero, and
        the merge below adds nothing there."""
        import torch

        lora_b = {name: m for name, m in model.named_modules() if name.endswith("lora_B")}
        placed = {name: BLOCK_INDEX.match(name) for name in lora_b}
        unplaced = [name for name, match in placed.items() if match is None]
        if unplaced:
            raise ValueError(f"multitask: active_layers needs a block index in every LoRA module name; "
                             f"{unplaced[0]} has none")
        blocks = {}
        for match in placed.values():
            blocks[match[1]] = max(blocks.get(match[1], 0), int(match[2]) + 1)
        kept = 0
        with torch.no_grad():
            for name, module in lora_b.items():
                stack, index = placed[name][1], int(placed[name][2])
                depth = 100 * index / blocks[stack]
                if lo <= depth < hi:
                    kept += 1
                    continue
                for linear in module.values():
                    linear.weight.zero_()
        if kept == 0:
            raise ValueError(f"multitask: active_layers [{lo}, {hi}] selects no block of this model "
                             f"({', '.join(f'{s}: {n} blocks' for s, n in blocks.items())}); use a wider range")
