"""RAMoLE (arXiv 2406.16989) and LoraRetriever's composition baselines, over a pool of LoRAs with per-sample routing.

Every method here is built over the whole LoRA pool (stacked in the LoRA bank) and composes, for each sample, only
the k LoRAs retrieved for that sample: the caller sets them per batch with `route(indices)`, indices (batch, k) into
the pool in retrieval order (best first). One forward serves a batch whose samples all use different LoRAs.

    ramole     RouterLoRA: at every LoRA-wrapped matrix, attention of the input (query) over each retrieved LoRA's
               output (keys), softmax over the retrieved set, per token:
                   q = W_q x,  k_j = W_k B_j A_j x,  w = softmax(q . k_j / sqrt(dim)),  y = W x + sum_j w_j B_j A_j x
               Trained with the base model and the LoRAs frozen, with LoRA dropout (each retrieved LoRA dropped from
               a training sample with probability `lora_dropout`, at least one kept). The router reads the LoRAs'
               outputs, not their identities, so it accepts LoRAs it never saw.
    mixture    uniform average of the retrieved LoRAs' outputs (output space)
    fusion     one LoRA per sample with the retrieved LoRAs' averaged A and B factors (parameter averaging)
    selection  the top-1 retrieved LoRA only
    oracle     the sample's own task LoRA (the caller routes to it instead of to the retrieved set)

Choices the paper leaves open (config and docs/methods.md record them): the router's dimension (16), its
placement (one router per LoRA-wrapped matrix), per-token weights, the keys read through B_j (k_j = (W_k B_j) h_j, exact
and cheaper than projecting the d_out-wide output), W_k initialised to zero so that RAMoLE starts as `mixture`, and
the LoRA dropout rate (0.3).
"""

import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn

from molebench.core.bank import BankedLinear, LowRank, inject, module_key
from molebench.core.method import Method, MethodConfig, register_method


class RoutingError(RuntimeError):
    pass


class Retrieved(Method):
    """Base of the methods over a retrieved set: `route` sets each sample's LoRAs, the mixer composes them."""

    own_lora: ClassVar[bool] = False  # route each sample to its own task's LoRA instead of the retrieved set

    def build(self, base, experts):
        self.experts = [e.name for e in experts]
        self.routing: torch.Tensor | None = None  # (batch, k) pool indices of the current batch
        self.keep: torch.Tensor | None = None     # (batch, k) LoRA dropout mask while training, else None

        def mixer(layer, x):
            if self.routing is None:
                raise RoutingError(f"{self.name}: no LoRAs routed for this batch; call route(indices) first (the "
                                   f"RAMoLE pipeline does this per batch from the retriever's output)")
            if self.routing.shape[0] != x.shape[0]:
                raise RoutingError(f"{self.name}: routed {self.routing.shape[0]} samples but the batch has "
                                   f"{x.shape[0]}")
            return self.compose(layer, x, self.routing.to(x.device))

        inject(base, experts, mixer)
        self.add_parameters(base)
        return base.eval()

    def add_parameters(self, model: nn.Module) -> None:
        """Methods with their own parameters add them here (after the LoRAs are injected)."""

    def route(self, indices: torch.Tensor) -> None:
        """Set each sample's LoRAs for the next forward or generate call: (batch, k) pool indices, best first."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        if indices.dim() != 2 or indices.shape[1] < 1:
            raise RoutingError(f"{self.name}: route() takes (batch, k) LoRA indices, got shape {tuple(indices.shape)}")
        if int(indices.min()) < 0 or int(indices.max()) >= len(self.experts):
            raise RoutingError(f"{self.name}: LoRA index out of range 0..{len(self.experts) - 1}")
        self.routing = indices

    def compose(self, layer, x: torch.Tensor, idx: torch.Tensor) -> LowRank:
        raise NotImplementedError


def uniform(idx: torch.Tensor, dtype) -> torch.Tensor:
    return torch.full(idx.shape, 1.0 / idx.shape[1], dtype=dtype, device=idx.device)


@register_method("mixture")
class Mixture(Retrieved):
    description = "LoraRetriever mixture: uniform average of the retrieved LoRAs' outputs, per sample"

    def compose(self, layer, x, idx):
        return layer.bank.routed_mix(layer.bank.routed_low_rank(x, idx), idx, uniform(idx, x.dtype))


@register_method("fusion")
class Fusion(Retrieved):
    description = "LoraRetriever fusion: one LoRA per sample from the retrieved LoRAs' averaged factors"

    def compose(self, layer, x, idx):
        return layer.bank.routed_factor_mix(x, idx, uniform(idx, x.dtype))


@register_method("selection")
class Selection(Retrieved):
    description = "LoraRetriever selection: the top-1 retrieved LoRA only, per sample"

    def compose(self, layer, x, idx):
        top = idx[:, :1]
        return layer.bank.routed_mix(layer.bank.routed_low_rank(x, top), top, uniform(top, x.dtype))


@register_method("oracle")
class Oracle(Selection):
    description = "oracle for mixed tasks: each sample's own task LoRA (IID only)"
    own_lora = True


@dataclasses.dataclass
class RAMoLEConfig(MethodConfig):
    router_dim: int = dataclasses.field(default=16, metadata={
        "help": "width of the RouterLoRA's query and key projections (the paper gives none)"})
    lora_dropout: float = dataclasses.field(default=0.3, metadata={
        "help": "probability of dropping each retrieved LoRA from a training sample (LoRA dropout; at least one "
                "LoRA is kept); 0 turns it off. The paper gives no rate"})

    def __post_init__(self):
        if self.router_dim < 1:
            raise ValueError(f"ramole: router_dim must be >= 1, got {self.router_dim}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"ramole: lora_dropout must be in [0, 1), got {self.lora_dropout}")


class RouterLoRA(nn.Module):
    """One router for one LoRA-wrapped matrix: scores each retrieved LoRA by attention of the input over its output."""

    def __init__(self, d_in: int, d_out: int, dim: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(dim, d_in) / math.sqrt(d_in))
        self.key = nn.Parameter(torch.zeros(dim, d_out))  # zero keys: uniform weights at the start (= mixture)
        self.scale = 1 / math.sqrt(dim)

    def forward(self, x, h, b, keep):
        """x (batch, seq, d_in), h (batch, seq, k, r) low-rank outputs, b (batch, k, r, d_out) the LoRAs' B^T,
        keep (batch, k) bool or None -> (batch, seq, k) weights."""
        q = x @ self.query.T.to(x.dtype)                                   # (batch, seq, dim)
        key_b = torch.einsum("od,bkrd->bkor", self.key.to(b.dtype), b)     # W_k B_j: keys without the d_out-wide output
        keys = torch.einsum("bskr,bkor->bsko", h, key_b)                   # (batch, seq, k, dim)
        scores = torch.einsum("bso,bsko->bsk", q, keys) * self.scale
        if keep is not None:
            scores = scores.masked_fill(~keep[:, None], float("-inf"))
        return torch.softmax(scores.float(), dim=-1).to(x.dtype)


@register_method("ramole")
class RAMoLE(Retrieved):
    description = "RAMoLE: RouterLoRA attention over each sample's retrieved LoRAs, trained with LoRA dropout"
    config_class = RAMoLEConfig
    trainable = True

    def add_parameters(self, model):
        layers = [m for m in model.modules() if isinstance(m, BankedLinear)]
        routers = nn.ModuleDict({module_key(layer.name): RouterLoRA(layer.base.in_features, layer.base.out_features,
                                                                    self.config.router_dim) for layer in layers})
        model.add_module("ramole_routers", routers.to(model.device))
        self.routers = routers
        self.fitting = False

    def compose(self, layer, x, idx):
        bank = layer.bank
        h = bank.routed_low_rank(x, idx)
        weights = self.routers[module_key(layer.name)](x, h, bank.routed_b(idx), self.keep)
        return bank.routed_mix(h, idx, weights)

    def route(self, indices):
        super().route(indices)
        self.keep = self.dropout_mask(self.routing.shape) if self.fitting else None

    def dropout_mask(self, shape) -> torch.Tensor | None:
        """LoRA dropout: keep each retrieved LoRA with probability 1 - p, and at least one per sample (a random one)."""
        p = self.config.lora_dropout
        if p == 0:
            return None
        keep = torch.rand(shape) >= p
        rescue = torch.randint(shape[1], (shape[0],))
        keep[torch.arange(shape[0]), rescue] |= ~keep.any(1)
        return keep

    def fit(self, model, tokenizer, train, trainer):
        """`train` records carry `lora_indices`: the pool indices retrieved for them (best first)."""
        missing = [r["id"] for r in train if "lora_indices" not in r]
        if missing:
            raise ValueError(f"ramole: training records {missing[:3]} have no retrieved LoRAs (lora_indices)")
        params = list(self.routers.parameters())
        self.fitting = True
        try:
            return trainer.train(model, tokenizer, train, params,
                                 on_batch=lambda idx: self.route([train[i]["lora_indices"] for i in idx]))
        finally:
            self.fitting = False
            self.keep = None
