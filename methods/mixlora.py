"""MixLoRA (arXiv 2404.15159): routed LoRA experts that share the frozen FFN, and its LoRA and DoRA baselines.

Every gated FFN (LLaMA gate/up/down, T5 wi_0/wi_1/wo) becomes a sparse mixture of `num_experts` experts. Expert e is
the frozen FFN with its own LoRA on each of the three matrices:

    E_e(x) = (W2 + s B2e A2e) [ act((W1 + s B1e A1e) x) * (W3 + s B3e A3e) x ],     s = lora_alpha / r
    p      = softmax(R x)            R: Linear(d, E, bias=False), fp32, init Normal(0, router_init_range)
    y      = sum over the top_k experts of x:  p_e / (sum of the top_k p) * E_e(x)
    L      = L_task + router_aux_loss_coef * E * sum_e f_e P_e     (Mixtral's load-balance loss over the router logits
                                                                   of every layer; f_e: share of (token, slot)
                                                                   assignments, P_e: mean router probability;
                                                                   padding excluded)

Attention q/k/v/o get one ordinary PEFT LoRA each (not routed). Optional jitter multiplies the FFN input by
U(1 - eps, 1 + eps) in training. Two execution paths give the same numbers (tests/test_mixlora.py):
    plain      each expert runs the whole FFN on its routed tokens: W1 and W3 run top_k times per token
    optimised  W1 x and W3 x run once for all tokens; each expert adds only its LoRA deltas on its tokens
               (the paper's high-throughput framework); W2 still runs per expert, on the gated product

Saved folder (`save`): `state.safetensors` and `method.json` (what `load` reads back, as for every method), plus, for
LLaMA-family models, `official/adapter_config.json` and `official/adapter_model.bin` in the official MixLoRA format,
which `mixlora.load_adapter_weights` + `mixlora.inject_adapter_in_model` (PyPI `mixlora`) load unchanged.

Departures (docs/methods.md repeats them): the official code rewrites the LLaMA modelling file, here the FFN modules
are wrapped; T5's gated FFN is supported (the official code is LLaMA-family only); T5's decoder FFNs route every
decoder position (their padding is not masked out of the balance loss, the decoder stack gets no attention mask in
training); DoRA experts (an official option) are not implemented.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from molebench.methods.multitask import Multitask
from torch import nn

from molebench.core.method import Method, MethodConfig, register_method


@dataclasses.dataclass(frozen=True)
class Layout:
    """Module names of one model family: the FFN's three matrices and activation, and the attention projections."""
    gate: str
    up: str
    down: str
    act: str
    attention: tuple[str, ...]


LAYOUTS = {
    "llama": Layout("gate_proj", "up_proj", "down_proj", "act_fn", ("q_proj", "k_proj", "v_proj", "o_proj")),
    "t5": Layout("wi_0", "wi_1", "wo", "act", ("q", "k", "v", "o")),
}
EXECUTIONS = ("optimised", "plain")
ROLES = ("gate", "up", "down")
# a layer stack is the module holding the numbered layers: model.layers.3.mlp -> model; encoder.block.3... -> encoder
STACK = re.compile(r"^(.*?)\.?[^.]+\.\d+\.")


@dataclasses.dataclass
class MixLoRAConfig(MethodConfig):
    num_experts: int = dataclasses.field(default=8, metadata={"help": "LoRA experts per FFN (official default 8)"})
    top_k: int = dataclasses.field(default=2, metadata={"help": "experts each token is routed to (official 2)"})
    r: int = dataclasses.field(default=16, metadata={"help": "rank of every expert LoRA and attention LoRA"})
    lora_alpha: float = dataclasses.field(default=32, metadata={"help": "LoRA scaling numerator (scale alpha / r)"})
    lora_dropout: float = dataclasses.field(default=0.05, metadata={"help": "dropout on the LoRA inputs in training"})
    router_aux_loss_coef: float = dataclasses.field(default=0.001, metadata={
        "help": "weight of the load-balance loss: 0.001 in the official code (its README's examples use 0.01); "
                "0 turns it off"})
    router_init_range: float = dataclasses.field(default=0.02, metadata={
        "help": "standard deviation of the router's Normal(0, std) initialisation"})
    jitter_noise: float = dataclasses.field(default=0.0, metadata={
        "help": "training only: multiply the FFN input by U(1 - eps, 1 + eps); 0 (the default) turns it off"})
    attention_lora: bool = dataclasses.field(default=True, metadata={
        "help": "an independent PEFT LoRA on the attention projections (q/k/v/o), as the paper"})
    layout: str = dataclasses.field(default="auto", metadata={
        "help": f"module names of the FFN and attention: 'auto' (detect) or one of {sorted(LAYOUTS)}"})
    execution: str = dataclasses.field(default="optimised", metadata={
        "help": f"{EXECUTIONS}: shared W1 x / W3 x for all tokens (the paper's), or the whole FFN per expert; "
                f"same numbers, different cost"})

    def __post_init__(self):
        if self.num_experts < 1:
            raise ValueError(f"mixlora: num_experts must be at least 1, got {self.num_experts}")
        if not 1 <= self.top_k <= self.num_experts:
            raise ValueError(f"mixlora: top_k must be between 1 and num_experts ({self.num_experts}), got "
                             f"{self.top_k}: a token cannot be routed to more experts than exist")
        if self.r < 1 or self.lora_alpha <= 0:
            raise ValueError(f"mixlora: r must be >= 1 and lora_alpha > 0, got r={self.r}, alpha={self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"mixlora: lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.router_aux_loss_coef < 0 or self.router_init_range < 0 or self.jitter_noise < 0:
            raise ValueError("mixlora: router_aux_loss_coef, router_init_range and jitter_noise must be >= 0")
        if self.layout != "auto" and self.layout not in LAYOUTS:
            raise ValueError(f"mixlora: layout must be 'auto' or one of {sorted(LAYOUTS)}, got {self.layout!r}")
        if self.execution not in EXECUTIONS:
            raise ValueError(f"mixlora: execution must be one of {EXECUTIONS}, got {self.execution!r}")


def find_ffns(model: nn.Module, layout: Layout) -> list[str]:
    """Names of the modules whose children include the layout's three FFN matrices, as plain linears."""
    return [name for name, m in model.named_modules()
            if all(isinstance(getattr(m, n, None), nn.Linear) for n in (layout.gate, layout.up, layout.down))]


def resolve_layout(model: nn.Module, name: str) -> Layout:
    """The layout named, or the first known one whose FFN modules the model has; raises naming what is expected."""
    candidates = LAYOUTS if name == "auto" else {name: LAYOUTS[name]}
    for layout in candidates.values():
        if find_ffns(model, layout):
            return layout
    known = "; ".join(f"{k}: ({v.gate}, {v.up}, {v.down})" for k, v in candidates.items())
    raise ValueError(f"mixlora: {type(model).__name__} has no gated FFN with the module names of {known}. MixLoRA "
                     f"needs a gated FFN (non-gated T5 'wi'/'wo' FFNs do not qualify); add the model's names to "
                     f"LAYOUTS in methods/mixlora.py")


class Routing:
    """State the FFNs of one model share: each stack's token mask of the current forward, the router logits of a
    training forward (for the balance loss), and token counts per expert (for the utilisation report)."""

    def __init__(self):
        self.masks: dict[str, torch.Tensor | None] = {}
        self.logits: list[torch.Tensor] = []

    def hook(self, stack: str):
        def capture(module, args, kwargs):
            mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
            self.masks[stack] = mask if mask is None or mask.dim() == 2 else None
        return capture


def load_balance_loss(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Mixtral's auxiliary loss, E * sum_e f_e P_e, over router logits (tokens, E) of every layer (padding removed):
    f_e sums the top-k slots' shares of tokens sent to e, P_e is the mean router probability of e."""
    probs = logits.float().softmax(-1)
    chosen = probs.topk(top_k, dim=-1).indices
    assigned = F.one_hot(chosen, logits.shape[-1]).float().mean(0)  # (top_k, E)
    return logits.shape[-1] * (assigned * probs.mean(0)).sum()


class MixLoRAFFN(nn.Module):
    """A frozen gated FFN turned into `num_experts` routed LoRA experts (see the module docstring)."""

    def __init__(self, ffn: nn.Module, layout: Layout, config: MixLoRAConfig, routing: Routing, stack: str):
        super().__init__()
        self.ffn, self.layout, self.routing, self.stack = ffn, layout, routing, stack
        self.num_experts, self.top_k, self.jitter = config.num_experts, config.top_k, config.jitter_noise
        self.optimised = config.execution == "optimised"
        self.scaling = config.lora_alpha / config.r
        self.lora_dropout = nn.Dropout(config.lora_dropout)
        self.act = getattr(ffn, layout.act)
        self.ffn_dropout = getattr(ffn, "dropout", nn.Identity())  # T5 drops out the gated product before wo
        linears = {role: getattr(ffn, getattr(layout, role)) for role in ROLES}
        device = linears["gate"].weight.device
        self.router = nn.Linear(linears["gate"].in_features, config.num_experts, bias=False, dtype=torch.float32,
                                device=device)
        nn.init.normal_(self.router.weight, std=config.router_init_range)
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        for role, linear in linears.items():
            a = torch.empty(config.num_experts, config.r, linear.in_features, device=device)
            for e in range(config.num_experts):  # each expert as PEFT inits one LoRA: A Kaiming-uniform, B zero
                nn.init.kaiming_uniform_(a[e], a=math.sqrt(5))
            self.lora_A[role] = nn.Parameter(a)
            self.lora_B[role] = nn.Parameter(torch.zeros(config.num_experts, linear.out_features, config.r,
                                                         device=device))
        self.register_buffer("assignments", torch.zeros(config.num_experts), persistent=False)
        self.register_buffer("tokens", torch.zeros(()), persistent=False)

    def linear(self, role: str) -> nn.Linear:
        return getattr(self.ffn, getattr(self.layout, role))

    def delta(self, role: str, expert: int, x: torch.Tensor) -> torch.Tensor:
        a, b = self.lora_A[role][expert], self.lora_B[role][expert]
        return (self.lora_dropout(x) @ a.T.to(x.dtype)) @ b.T.to(x.dtype) * self.scaling

    def valid_tokens(self, shape: torch.Size) -> torch.Tensor | None:
        """Flat mask of real (non-padding) tokens, when the stack's attention mask covers exactly these tokens (not
        while decoding with a cache, where every new token is real)."""
        mask = self.routing.masks.get(self.stack)
        return mask.reshape(-1).bool() if mask is not None and mask.shape == shape[:2] else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.jitter > 0:
            x = x * torch.empty_like(x).uniform_(1.0 - self.jitter, 1.0 + self.jitter)
        h = x.reshape(-1, x.shape[-1])
        with torch.autocast(h.device.type, enabled=False):  # the router stays fp32 under bf16 autocast
            logits = self.router(h.float())
        weights, chosen = logits.softmax(-1).topk(self.top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        self.record(logits, chosen, self.valid_tokens(x.shape))
        out = torch.zeros_like(h)
        shared = {role: self.linear(role)(h) for role in ("gate", "up")} if self.optimised else None
        for e in range(self.num_experts):
            token, slot = torch.where(chosen == e)
            if token.numel() == 0:
                continue
            xe = h[token]
            gate, up = ((shared[role][token] if shared else self.linear(role)(xe)) + self.delta(role, e, xe)
                        for role in ("gate", "up"))
            product = self.ffn_dropout(self.act(gate) * up)
            ye = self.linear("down")(product) + self.delta("down", e, product)
            out.index_add_(0, token, (ye * weights[token, slot, None].to(ye.dtype)).to(out.dtype))
        return out.reshape(x.shape)

    def extra_flops_per_token(self) -> int:
        """Over the base FFN, for the optimised path: the router, top_k LoRA deltas on each matrix, and top_k - 1
        more W2 products (the plain path also repeats W1 and W3). Counted by molebench.accounting."""
        d, f = self.linear("gate").in_features, self.linear("gate").out_features
        r = self.lora_A["gate"].shape[1]
        return 2 * d * self.num_experts + self.top_k * 2 * r * 3 * (d + f) + (self.top_k - 1) * 2 * d * f

    def record(self, logits: torch.Tensor, chosen: torch.Tensor, valid: torch.Tensor | None) -> None:
        if valid is not None:
            logits, chosen = logits[valid], chosen[valid]
        if self.training:
            self.routing.logits.append(logits)
        with torch.no_grad():
            self.assignments += torch.bincount(chosen.reshape(-1), minlength=self.num_experts).to(self.assignments)
            self.tokens += chosen.shape[0]


def task_type(model):
    from peft import TaskType

    return TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM


@register_method("mixlora")
class MixLoRA(Method):
    description = "MixLoRA: top-k routed LoRA experts sharing each frozen FFN, plus attention LoRA (trains its own)"
    config_class = MixLoRAConfig
    uses_experts = False
    trainable = True

    def build(self, base, experts):
        from peft import LoraConfig, get_peft_model

        cfg = self.config
        layout = resolve_layout(base, cfg.layout)  # before anything trains: an unknown FFN fails here
        if cfg.attention_lora:
            model = get_peft_model(base, LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                    target_modules=list(layout.attention), task_type=task_type(base)))
        else:
            model = base.requires_grad_(False)
        self.layout, self.routing, self.ffns = layout, Routing(), {}
        for name in find_ffns(model, layout):
            parent_name, _, child = name.rpartition(".")
            stack = STACK.match(name).group(1)
            wrapper = MixLoRAFFN(model.get_submodule(name), layout, cfg, self.routing, stack)
            setattr(model.get_submodule(parent_name), child, wrapper)
            self.ffns[name] = wrapper
        for stack in dict.fromkeys(w.stack for w in self.ffns.values()):
            model.get_submodule(stack).register_forward_pre_hook(self.routing.hook(stack), with_kwargs=True)
        return model.eval()  # new modules start in training mode; the trainer switches modes itself

    def step_loss(self) -> torch.Tensor:
        """The balance loss of the training forward that just ran (read once per step by the trainer)."""
        logits, self.routing.logits = self.routing.logits, []
        coef = self.config.router_aux_loss_coef
        return coef * load_balance_loss(torch.cat(logits), self.config.top_k) if coef and logits else torch.zeros(())

    def fit(self, model, tokenizer, train, trainer):
        params = [p for p in model.parameters() if p.requires_grad]
        return trainer.train(model, tokenizer, train, params, extra_loss=self.step_loss)

    def gate_report(self, model):
        """Expert utilisation per FFN since the last report (the scorer gets one per task; after `fit`, over all of
        training): routed tokens and each expert's share of the (token, slot) assignments. None if nothing ran."""
        if not self.ffns or not any(w.tokens.item() for w in self.ffns.values()):
            return None
        layers = {}
        for name, w in self.ffns.items():
            total = max(w.assignments.sum().item(), 1.0)
            layers[name] = {"tokens": int(w.tokens.item()),
                            "share": [round(c / total, 6) for c in w.assignments.tolist()]}
            w.assignments.zero_()
            w.tokens.zero_()
        return {"kind": "expert_utilisation", "num_experts": self.config.num_experts, "top_k": self.config.top_k,
                "layers": layers, "order": list(layers)}

    def save(self, model, out_dir):
        super().save(model, out_dir)
        if self.layout == LAYOUTS["llama"]:
            self.save_official(model, out_dir)

    def save_official(self, model, out_dir) -> None:
        """The official MixLoRA folder format (PyPI `mixlora` 0.2.x, LLaMA family): adapter_config.json and
        adapter_model.bin with keys mixlora.layers.{i}.self_attn.{proj}.lora_{A,B}.weight,
        mixlora.layers.{i}.mlp.{proj}.experts.{e}.lora_{A,B}.weight and mixlora.layers.{i}.mlp.moe_gate.weight."""
        cfg, layout = self.config, self.layout
        weights = {}
        for i, (name, w) in enumerate(self.ffns.items()):
            prefix = f"mixlora.layers.{i}"
            weights[f"{prefix}.mlp.moe_gate.weight"] = w.router.weight.detach().clone()
            for role in ROLES:
                proj = getattr(layout, role)
                for e in range(cfg.num_experts):
                    weights[f"{prefix}.mlp.{proj}.experts.{e}.lora_A.weight"] = w.lora_A[role][e].detach().clone()
                    weights[f"{prefix}.mlp.{proj}.experts.{e}.lora_B.weight"] = w.lora_B[role][e].detach().clone()
            if cfg.attention_lora:
                attn = model.get_submodule(name.rpartition(".")[0] + ".self_attn")
                for proj in layout.attention:
                    lora = getattr(attn, proj)
                    weights[f"{prefix}.self_attn.{proj}.lora_A.weight"] = lora.lora_A["default"].weight.detach().clone()
                    weights[f"{prefix}.self_attn.{proj}.lora_B.weight"] = lora.lora_B["default"].weight.detach().clone()
        targets = (list(layout.attention) if cfg.attention_lora else []) + [getattr(layout, r) for r in ROLES]
        official = {"base_model_name_or_path": model.config.name_or_path, "task_type": "CAUSAL_LM",
                    "peft_type": "MIXLORA", "routing_strategy": "mixlora", "r": cfg.r,
                    "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout, "target_modules": targets,
                    "num_experts": cfg.num_experts, "top_k": cfg.top_k, "router_aux_loss_coef": cfg.router_aux_loss_coef,
                    "router_init_range": cfg.router_init_range, "jitter_noise": cfg.jitter_noise,
                    "act_fn": model.config.hidden_act}
        folder = Path(out_dir) / "official"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "adapter_config.json").write_text(json.dumps(official, indent=2) + "\n")
        torch.save(weights, folder / "adapter_model.bin")


# ---- baselines: PEFT LoRA and DoRA trained on the same data and recipe ------------------------------------------

def mixlora_trainable_params(model: nn.Module, config: MixLoRAConfig) -> int:
    """MixLoRA's trainable parameter count on `model` (computed from module shapes; nothing is built)."""
    layout = resolve_layout(model, config.layout)
    total = 0
    for name in find_ffns(model, layout):
        ffn = model.get_submodule(name)
        d = getattr(ffn, layout.gate).in_features
        total += d * config.num_experts + config.num_experts * config.r * sum(
            getattr(ffn, getattr(layout, role)).in_features + getattr(ffn, getattr(layout, role)).out_features
            for role in ROLES)
    if config.attention_lora:
        total += config.r * _fan_sum(model, layout.attention)
    return total


def _fan_sum(model: nn.Module, targets) -> int:
    """Sum of in + out features over the linears named in `targets`: a LoRA's parameters per unit of rank."""
    return sum(m.in_features + m.out_features for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and name.rpartition(".")[2] in targets)


@dataclasses.dataclass
class LoRAConfig(MethodConfig):
    r: int = dataclasses.field(default=16, metadata={"help": "LoRA rank (MixLoRA's expert rank: the same-rank baseline)"})
    lora_alpha: float = dataclasses.field(default=32, metadata={"help": "LoRA alpha; with match_mixlora, alpha / r is kept"})
    lora_dropout: float = dataclasses.field(default=0.05, metadata={"help": "dropout on the LoRA inputs in training"})
    target_modules: list[str] | None = dataclasses.field(default=None, metadata={
        "help": "PEFT target modules; default: attention and FFN matrices of the model's layout (as MixLoRA)"})
    match_mixlora: dict | None = dataclasses.field(default=None, metadata={
        "help": "MixLoRA options (e.g. {} for its defaults): the rank is chosen so that the trainable parameters match "
                "that MixLoRA's on this model (the official templates: LoRA r 80 against MixLoRA r 16, 8 experts)"})

    def __post_init__(self):
        if self.r < 1 or self.lora_alpha <= 0:
            raise ValueError(f"{type(self).__name__}: r must be >= 1 and lora_alpha > 0")
        if self.match_mixlora is not None:
            MixLoRAConfig.from_dict(self.match_mixlora)  # fails now on bad options


@register_method("lora")
class LoRA(Multitask):
    description = "PEFT LoRA trained on the task (per_task) or on the group's union; rank option or MixLoRA-matched"
    config_class = LoRAConfig
    uses_experts = False
    use_dora = False

    def build(self, base, experts):
        from peft import LoraConfig, get_peft_model

        cfg = self.config
        layout = resolve_layout(base, "auto")
        targets = cfg.target_modules or [*layout.attention, layout.gate, layout.up, layout.down]
        r, alpha = cfg.r, cfg.lora_alpha
        if cfg.match_mixlora is not None:
            r = max(1, round(mixlora_trainable_params(base, MixLoRAConfig.from_dict(cfg.match_mixlora))
                             / _fan_sum(base, targets)))
            alpha = cfg.lora_alpha * r / cfg.r
        return get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=cfg.lora_dropout,
                                               target_modules=targets, use_dora=self.use_dora,
                                               task_type=task_type(base)))


@register_method("dora")
class DoRA(LoRA):
    description = "PEFT DoRA (use_dora): LoRA with a learned magnitude per output; options as lora"
    use_dora = True
