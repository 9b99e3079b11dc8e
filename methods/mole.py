"""MoLE: learnable gating over frozen LoRAs (MoLE paper, Section 3.2, Eq. 9-16; Section 5 for the variants).

Per gate (one per layer by default, see `granularity`) the gate turns the LoRAs' outputs into per-sample weights:

    u     = gate input (`gate_input`: pooled LoRA outputs, the paper's Eq. 9, or the official code's hidden state)
    eps   = e^T u                                                   Eq. 10, no bias
    g     = softmax(eps / tau)                                      Eq. 11, tau learnable or fixed
    y     = W x + sum_i g_i B_i A_i x                               Eq. 12, at every LoRA-wrapped matrix of the gate
    L     = L_task + alpha * L_balance,  L_balance = -sum_i log q_i,  q_i = mean over gates and samples of g_i
                                                                    Eq. 14-16, alpha = 0.5

Base model and LoRAs stay frozen; only the gates (and tau) train. At inference `mask` drops chosen LoRAs and
renormalises the remaining weights of the same trained gates (Figures 1 and 8).

Granularities (Table 9), from the module names (a block is the path up to its first numeric index):
    matrix   one gate per LoRA-wrapped matrix       model.layers.3.self_attn.q_proj
    layer    one per sub-layer: attention or FFN    model.layers.3.self_attn, model.layers.3.mlp;
                                                    T5: encoder.block.3.layer.0 (self-attention), .layer.1 (FFN or
                                                    cross-attention in the decoder), decoder .layer.2 (FFN)
    block    one per transformer block               model.layers.3; T5: encoder.block.3, decoder.block.3
    network  one gate for the whole model

Departures, and why (docs/methods.md repeats them):
- Gate inputs are read at the gate's first LoRA-wrapped matrix (the paper's E_i is a whole block run with LoRA i,
  which would cost N extra block forwards). Gates read the prompt tokens only, once per sample, and their weights are
  held while decoding; gates never see answer tokens, in training or scoring.
- `pooled` (the default) is sequence-length independent; the paper's and the official code's inputs need a fixed
  `gate_length` and grow the gate to N*L*d (paper) or L*d (official) inputs per LoRA row.
- The balance loss has a gradient here (the official code computes it from detached numbers).
- Gate rows start with norm 0.01 as in the official code, so MoLE starts from near-uniform weights, i.e. from NLA.
"""

import dataclasses
import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from molebench.core.bank import inject, module_key
from molebench.core.method import Method, MethodConfig, register_method
from molebench.core.models import current_prompt

GRANULARITIES = ("matrix", "layer", "block", "network")
GATE_INPUTS = ("pooled", "paper", "hidden")
# path up to the first numeric index, with something below it: model.layers.3 | encoder.block.3
BLOCK = re.compile(r"^(.*?\.\d+)\.[^.]+")
# the block plus its next component (and that component's index): model.layers.3.mlp | encoder.block.3.layer.1
LAYER = re.compile(r"^(.*?\.\d+\.[^.]+(?:\.\d+)?)\.[^.]+")


@dataclasses.dataclass
class MoLEConfig(MethodConfig):
    granularity: str = dataclasses.field(default="layer", metadata={
        "help": f"one gate per LoRA-wrapped matrix, sub-layer (attention or FFN), transformer block, or for the "
                f"whole network: {GRANULARITIES}"})
    gate_input: str = dataclasses.field(default="pooled", metadata={
        "help": "what a gate reads at its first wrapped matrix, from the prompt tokens: 'pooled' (each LoRA's output "
                "averaged over the prompt, any length), 'paper' (Eq. 9: every LoRA's output at every position, "
                "needs gate_length), 'hidden' (official code: the input hidden state at every position, needs "
                "gate_length)"})
    gate_length: int | None = dataclasses.field(default=None, metadata={
        "help": "fixed sequence length L of the 'paper' and 'hidden' gate inputs; shorter prompts are zero-padded, "
                "longer ones fail; must be >= the training max_input_tokens"})
    balance_alpha: float = dataclasses.field(default=0.5, metadata={"help": "weight alpha of L_balance (Eq. 16); 0 turns it off"})
    temperature: float = dataclasses.field(default=1.0, metadata={"help": "initial (or, fixed, the) softmax temperature tau (Eq. 11)"})
    learn_temperature: bool = dataclasses.field(default=True, metadata={"help": "train tau (paper) or keep it fixed"})
    gate_init_norm: float = dataclasses.field(default=0.01, metadata={"help": "norm of each gate row at init"})
    lr_experts: int | None = dataclasses.field(default=None, metadata={
        "help": "train the gates at the configured lr over up to this many LoRAs and at lr x lr_experts / N over N "
                "more (a step moves a gate's logits by about N lr sqrt(d), docs/methods.md); None: lr at every N"})
    mask: list[str | int] = dataclasses.field(default_factory=list, metadata={
        "help": "LoRAs to drop at inference, by expert name or index; the remaining gate weights are renormalised. "
                "Training ignores it, so the trained gates are those of the unmasked variant"})

    def __post_init__(self):
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"mole: granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.gate_input not in GATE_INPUTS:
            raise ValueError(f"mole: gate_input must be one of {GATE_INPUTS}, got {self.gate_input!r}")
        if self.gate_input == "pooled" and self.gate_length is not None:
            raise ValueError("mole: gate_length only applies to gate_input 'paper' or 'hidden'; remove it")
        if self.gate_input != "pooled" and (self.gate_length is None or self.gate_length < 1):
            raise ValueError(f"mole: gate_input {self.gate_input!r} reads a fixed sequence length: set gate_length "
                             f"to a positive number of tokens (at least the training max_input_tokens)")
        if self.temperature <= 0:
            raise ValueError(f"mole: temperature must be positive, got {self.temperature}")
        if self.balance_alpha < 0:
            raise ValueError(f"mole: balance_alpha must be >= 0, got {self.balance_alpha}")
        if self.lr_experts is not None and self.lr_experts < 1:
            raise ValueError(f"mole: lr_experts must be a number of LoRAs (>= 1) or null, got {self.lr_experts}")
        if len(set(map(str, self.mask))) != len(self.mask):
            raise ValueError(f"mole: mask lists a LoRA twice: {self.mask}")


def gate_group(module_name: str, granularity: str) -> str:
    """The gate a LoRA-wrapped matrix belongs to (see the module docstring for the mapping)."""
    if granularity == "matrix":
        return module_name
    if granularity == "network":
        return "network"
    match = (LAYER if granularity == "layer" else BLOCK).match(module_name)
    if match is None:
        shape = "<block>.<index>.<sub-layer>.<matrix>" if granularity == "layer" else "<blocks>.<index>.<...>"
        raise ValueError(f"mole: granularity {granularity!r} needs module names shaped {shape}, and "
                         f"{module_name!r} is not; use granularity 'matrix' or 'network' for this model")
    return match.group(1)


def prompt_tokens(t: torch.Tensor, mask: torch.Tensor, length: int, gate: str) -> torch.Tensor:
    """(batch, seq, ...) -> (batch, length, ...): each sample's prompt tokens moved to positions 0..k-1, zeros after,
    so a token sits at the same gate position whether the batch is left padded (generation) or right padded."""
    longest = int(mask.sum(1).max())
    if longest > length:
        raise RuntimeError(f"MoLE gate {gate}: a prompt of {longest} tokens is longer than gate_length {length}; "
                           f"raise gate_length or lower max_input_tokens (pipelines: gate_length must cover the "
                           f"UNet's largest token count, (resolution / 8)^2 for Stable Diffusion)")
    keep = mask.bool()
    out = t.new_zeros(t.shape[0], length, *t.shape[2:])
    out[keep.nonzero(as_tuple=True)[0], (mask.cumsum(1) - 1)[keep]] = t[keep]
    return out


def pooled_input(bank, x, h, mask, length, gate):
    """Each LoRA's output averaged over the prompt tokens, L2-normalised per LoRA: N*d features."""
    # mean on the low-rank side, then B_i: exact, as B_i is linear
    pooled = (h * mask[..., None, None]).sum(1) / mask.sum(1).clamp(min=1)[:, None, None]
    return F.normalize(bank.expert_outputs(pooled).float(), dim=-1).flatten(1)


def paper_input(bank, x, h, mask, length, gate):
    """Eq. 9: the LoRA outputs at L fixed positions, concatenated over LoRAs and L2-normalised: N*L*d features."""
    outputs = bank.expert_outputs(prompt_tokens(h, mask, length, gate))  # (batch, L, N, d)
    return F.normalize(outputs.float().transpose(1, 2).flatten(1), dim=-1)


def hidden_input(bank, x, h, mask, length, gate):
    """Official code: the input hidden state at L fixed positions, flattened and L2-normalised: L*d_in features."""
    return F.normalize(prompt_tokens(x, mask, length, gate).float().flatten(1), dim=-1)


# name -> (features fn, number of features given (N, the gate's first matrix, L))
GATE_INPUT_FNS = {
    "pooled": (pooled_input, lambda n, linear, length: n * linear.out_features),
    "paper": (paper_input, lambda n, linear, length: n * length * linear.out_features),
    "hidden": (hidden_input, lambda n, linear, length: length * linear.in_features),
}


def entropy(weights: torch.Tensor) -> torch.Tensor:
    """(..., N) gate weights -> (...) entropy in nats (0 * log 0 counted as 0, for masked LoRAs)."""
    return -torch.special.xlogy(weights, weights).sum(-1)


def balance_loss(log_weights: torch.Tensor) -> torch.Tensor:
    """Eq. 14-15: (gates, batch, N) log gate weights of one training step -> -sum_i log q_i, with log q_i taken as
    a logsumexp of the log weights: the same value, but finite when a LoRA's weight underflows to 0 in every sample
    (which -log(mean) turned into inf and a NaN gradient at 128 LoRAs)."""
    count = log_weights.shape[0] * log_weights.shape[1]
    return -(torch.logsumexp(log_weights, dim=(0, 1)) - math.log(count)).sum()


class Gate(nn.Module):
    def __init__(self, n: int, features: int, temperature: float, learn_temperature: bool, init_norm: float):
        super().__init__()
        weight = torch.randn(n, features)
        self.weight = nn.Parameter(weight / weight.norm(dim=1, keepdim=True) * init_norm)
        log_tau = torch.tensor(float(temperature)).log()
        self.log_tau = nn.Parameter(log_tau, requires_grad=learn_temperature)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, features) -> (batch, N) log gate weights (the balance loss needs them; the mix takes exp)."""
        return torch.log_softmax(features @ self.weight.T / self.log_tau.exp(), dim=-1)


@register_method("mole")
class MoLE(Method):
    description = "MoLE: learnable gates (per layer) over frozen LoRA outputs, learnable temperature, balance loss"
    config_class = MoLEConfig
    trainable = True
    can_mask = True

    def build(self, base, experts):
        cfg = self.config
        targets = {m for e in experts for m in e.factors}
        names = [n for n, _ in base.named_modules() if n in targets]
        groups = {name: gate_group(name, cfg.granularity) for name in names}
        anchors = {}
        for name in names:  # the gate's first matrix in model order sets its input size
            anchors.setdefault(groups[name], name)
        modules = dict(base.named_modules())
        features_fn, size_fn = GATE_INPUT_FNS[cfg.gate_input]
        gates = nn.ModuleDict({
            module_key(key): Gate(len(experts), size_fn(len(experts), modules[anchor], cfg.gate_length),
                                 cfg.temperature, cfg.learn_temperature, cfg.gate_init_norm)
            for key, anchor in anchors.items()})
        self.experts = [e.name for e in experts]
        self.keep = self._keep(self.experts)
        seq2seq = bool(getattr(base.config, "is_encoder_decoder", False))
        self.fitting = False
        self.step_weights: dict[str, torch.Tensor] = {}  # log gate weights (with grad) of the current training step
        self.last_step: dict[str, torch.Tensor] = {}
        self.seen: dict[str, list] = {}  # gate -> [sum of weights, sum of entropies, samples], at inference

        def mixer(layer, x):
            h = layer.bank.low_rank(x)
            ctx = current_prompt()
            if ctx is None:
                raise RuntimeError("MoLE gates need the prompt positions: wrap forward calls in "
                                   "molebench.models.prompt_positions(mask) (training and scoring do this)")
            key = groups[layer.name]
            weights = ctx.cache.get(("mole", key))
            if weights is None:
                # a gate reads the first of its matrices to run (CLIP's attention registers k_proj first but runs
                # q_proj first); it must have the shape the gate was sized for
                anchor = modules[anchors[key]]
                if (layer.base.in_features, layer.base.out_features) != (anchor.in_features, anchor.out_features):
                    raise RuntimeError(f"MoLE gate {key}: {layer.name} ran first but has another shape than "
                                       f"{anchors[key]}, which sized the gate; use granularity 'matrix' for this "
                                       f"architecture")
                # integer masks, as the collated prompt masks: prompt_tokens indexes with their cumulative sums
                if seq2seq and layer.name.startswith("decoder."):
                    mask = torch.zeros(h.shape[:2], dtype=torch.long, device=h.device)  # decoder start only
                    mask[:, 0] = 1
                elif ctx.mask is None:  # text-to-image: every position of the text encoder and UNet input counts
                    mask = torch.ones(h.shape[:2], dtype=torch.long, device=h.device)
                else:
                    mask = ctx.mask.to(h.device)
                    if mask.shape != h.shape[:2]:
                        raise RuntimeError(f"MoLE gate {key}: prompt mask {tuple(mask.shape)} does not match the "
                                           f"input {tuple(h.shape[:2])} at the first forward of a batch")
                features = features_fn(layer.bank, x, h, mask, cfg.gate_length, key)
                log_weights = gates[module_key(key)](features)
                weights = log_weights.exp()
                if self.fitting:
                    self.step_weights[key] = log_weights
                else:
                    if self.keep is not None:  # Figure 8: drop LoRAs, share their weight out proportionally
                        weights = weights * self.keep.to(weights.device)
                        weights = weights / weights.sum(-1, keepdim=True)
                    self._record(key, weights.detach())
                ctx.cache[("mole", key)] = weights
            return layer.bank.mix(h, weights)

        inject(base, experts, mixer)
        base.add_module("mole_gates", gates.to(base.device))
        return base.eval()

    def _keep(self, experts: list[str]) -> torch.Tensor | None:
        """1 for the LoRAs the mask keeps, 0 for those it drops; None without a mask."""
        if not self.config.mask:
            return None
        dropped = set()
        for entry in self.config.mask:
            if isinstance(entry, int) and 0 <= entry < len(experts):
                dropped.add(entry)
            elif entry in experts:
                dropped.add(experts.index(entry))
            else:
                raise ValueError(f"mole: mask names unknown LoRA {entry!r}; the LoRAs are {experts} "
                                 f"(or indices 0..{len(experts) - 1})")
        if len(dropped) == len(experts):
            raise ValueError(f"mole: mask {self.config.mask} drops every LoRA; keep at least one")
        return torch.tensor([0.0 if i in dropped else 1.0 for i in range(len(experts))])

    def _record(self, key: str, weights: torch.Tensor) -> None:
        weights = weights.float()
        sums = self.seen.setdefault(key, [0.0, 0.0, 0])
        sums[0] = sums[0] + weights.sum(0).cpu()
        sums[1] += entropy(weights).sum().item()
        sums[2] += weights.shape[0]

    def step_loss(self) -> torch.Tensor:
        """Balance loss of the training step that just ran forward; keeps its gate weights for `step_metrics`."""
        log_weights = torch.stack(list(self.step_weights.values()))  # (gates, batch, N)
        self.last_step = {key: w.detach().exp() for key, w in self.step_weights.items()}
        self.step_weights = {}
        alpha = self.config.balance_alpha
        return alpha * balance_loss(log_weights) if alpha else torch.zeros(())

    def step_metrics(self) -> dict:
        """Figure 5: mean gate entropy and mean weight per LoRA over every gate and sample of the step."""
        weights = torch.stack(list(self.last_step.values())).float()
        return {"gate_entropy": round(entropy(weights).mean().item(), 6),
                "gate_mean_weights": [round(w, 6) for w in weights.mean((0, 1)).tolist()]}

    def fit(self, model, tokenizer, train, trainer):
        cfg = self.config
        # pipelines' gate training has no prompt budget: there a gate_length too short fails at the first forward
        max_input = getattr(trainer.config, "max_input_tokens", None)
        if cfg.gate_length is not None and max_input is not None and max_input > cfg.gate_length:
            raise ValueError(f"mole: gate_length {cfg.gate_length} is shorter than the training max_input_tokens "
                             f"{max_input}, so a batch could not be gated; raise gate_length "
                             f"or lower max_input_tokens")
        params = [p for p in model.mole_gates.parameters() if p.requires_grad]
        self.fitting = True  # the mask is an inference mode: the gates train over every LoRA
        try:
            return trainer.train(model, tokenizer, train, params, extra_loss=self.step_loss,
                                 step_metrics=self.step_metrics, lr_scale=self.lr_scale())
        finally:
            self.fitting = False

    def lr_scale(self) -> float:
        """The gates' factor on the configured lr: 1 up to `lr_experts` LoRAs, lr_experts / N beyond."""
        n, k = len(self.experts), self.config.lr_experts
        return 1.0 if k is None or n <= k else k / n

    def gate_report(self, model):
        """Figure 7 data: per gate, the temperature, samples, mean entropy and mean weight per LoRA (in `experts`
        order) over the samples gated at inference since the last report (so the scorer gets one report per task);
        before any inference (right after fit), over the last training batch, unmasked (`masked` lists what the
        mask drops at inference). None if no gate has run."""
        if self.seen:
            source, stats, self.seen = "inference", self.seen, {}
        elif self.last_step:
            source = "last training step"
            stats = {key: [w.float().sum(0).cpu(), entropy(w.float()).sum().item(), w.shape[0]]
                     for key, w in self.last_step.items()}
        else:
            return None
        gates = {key: {"temperature": round(model.mole_gates[module_key(key)].log_tau.exp().item(), 6),
                       "samples": samples, "mean_entropy": round(entropy_sum / samples, 6),
                       "mean_weights": [round(w, 6) for w in (weight_sum / samples).tolist()]}
                 for key, (weight_sum, entropy_sum, samples) in stats.items()}
        masked = [] if self.keep is None else [e for e, k in zip(self.experts, self.keep.tolist()) if k == 0]
        # JSON files are written with sorted keys, so the model order of the gates is kept as a list
        return {"experts": self.experts, "masked": masked, "source": source, "gates": gates, "order": list(gates)}


def register_granularity_preset(name: str, granularity: str) -> None:
    """Register `name` as MoLE with another default granularity (the m-/l-/b-/n-MoLE of Table 9)."""
    title = granularity.capitalize()
    config_class = dataclasses.make_dataclass(f"{title}MoLEConfig", [("granularity", str, dataclasses.field(
        default=granularity, metadata=MoLEConfig.__dataclass_fields__["granularity"].metadata))], bases=(MoLEConfig,))
    description = f"MoLE with {granularity}-wise gates (Table 9); options as mole"
    register_method(name)(type(f"{title}MoLE", (MoLE,), {"config_class": config_class, "description": description}))


register_granularity_preset("m-mole", "matrix")
register_granularity_preset("l-mole", "layer")
register_granularity_preset("b-mole", "block")
register_granularity_preset("n-mole", "network")
