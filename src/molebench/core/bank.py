"""The LoRA bank: the N LoRAs of one linear layer held stacked, so that mixing them costs two matmuls.

    h = x A_cat^T                      one matmul for every expert's A       (..., N, r)
    y = x W^T + (h * w) B_cat          one matmul for every expert's B, added into the base output (addmm)

Weights w (per sample or shared) are applied on the low-rank side, which is exact because each B_i acts linearly on
its own h_i. Mixed ranks are zero-padded to the largest (exact: padded rows of A and columns of B are zero).
Methods that mix LoRA outputs (NLA in output space, MoLE) wrap target linears in a `BankedLinear` through `inject`;
the base model's modelling code is never rewritten. A mixer returns the low-rank pair (left, right) of its delta
rather than the delta itself, so that `BankedLinear` adds left @ right into the base output in one fused addmm
(baddbmm per sample): no d_out-wide delta is written and then added (docs/performance.md measures the saving).

Routed batches (RAMoLE, LoraRetriever): every sample has its own set of k LoRAs, given as indices (batch, k) into the
stack, the index form of the papers' per-sample mapping matrix (batch x N, k ones per row). The `routed_*` methods
gather each sample's own A and B, so a batch costs k LoRAs per sample whatever N is, in one batched matmul per factor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from molebench.core.adapters import Expert

LowRank = tuple[torch.Tensor, torch.Tensor]  # (left, right): a delta left @ right, never formed before the add


class LoraBank(nn.Module):
    def __init__(self, factors: list[tuple[torch.Tensor, torch.Tensor, float] | None], d_in: int, d_out: int,
                 dtype=torch.float32):
        super().__init__()
        self.n = len(factors)
        self.r = max(f[0].shape[0] for f in factors if f is not None)
        a = torch.zeros(self.n, self.r, d_in)
        b = torch.zeros(self.n, self.r, d_out)
        for i, f in enumerate(factors):
            if f is not None:  # an expert that does not adapt this module contributes zero
                a[i, : f[0].shape[0]] = f[0]
                b[i, : f[1].shape[1]] = (f[1] * f[2]).T  # scaling folded into B
        self.register_buffer("a", a.reshape(self.n * self.r, d_in).to(dtype), persistent=False)
        self.register_buffer("b", b.to(dtype), persistent=False)  # (N, r, d_out): B_i^T, so B_cat is a free view

    def low_rank(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_in) -> (..., N, r)"""
        return (x @ self.a.T).unflatten(-1, (self.n, self.r))

    def expert_outputs(self, h: torch.Tensor) -> torch.Tensor:
        """(..., N, r) -> (..., N, d_out): each expert's own output B_i A_i x."""
        return torch.einsum("...nr,nro->...no", h, self.b)

    def mix(self, h: torch.Tensor, weights: torch.Tensor) -> LowRank:
        """sum_i w_i B_i A_i x. h: (batch, ..., N, r); weights: (N,) shared or (batch, N) per sample."""
        if weights.dim() == 2:
            weights = weights.view(weights.shape[0], *([1] * (h.dim() - 3)), self.n)
        scaled = h * weights.unsqueeze(-1).to(h.dtype)
        return scaled.flatten(-2), self.b.view(self.n * self.r, -1)

    def routed_low_rank(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(batch, seq, d_in), indices (batch, k) -> (batch, seq, k, r): each sample's own LoRAs' A only."""
        a = self.a.view(self.n, self.r, -1)[idx]  # (batch, k, r, d_in)
        return torch.bmm(x, a.flatten(1, 2).transpose(1, 2)).unflatten(-1, (idx.shape[1], self.r))

    def routed_b(self, idx: torch.Tensor) -> torch.Tensor:
        """(batch, k) -> (batch, k, r, d_out): each sample's own LoRAs' B^T (scaling folded in)."""
        return self.b[idx]

    def routed_mix(self, h: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor) -> LowRank:
        """sum_j w_j B_{idx_j} h_j per sample. h: (batch, seq, k, r); weights (batch, k) or per token (batch, seq, k)."""
        if weights.dim() == 2:
            weights = weights[:, None]
        scaled = (h * weights.unsqueeze(-1).to(h.dtype)).flatten(2)  # (batch, seq, k*r)
        return scaled, self.routed_b(idx).flatten(1, 2)

    def routed_factor_mix(self, x: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor) -> LowRank:
        """Per sample, one LoRA with the weighted mean factors (sum_j w_j B_j)(sum_j w_j A_j) x (LoraRetriever's
        fusion: parameter averaging). weights: (batch, k)."""
        w = weights.to(self.a.dtype)
        a = torch.einsum("bk,bkri->bri", w, self.a.view(self.n, self.r, -1)[idx])
        b = torch.einsum("bk,bkro->bro", w, self.routed_b(idx))
        return torch.bmm(x, a.transpose(1, 2)), b

    def factor_sum(self, weights_a: torch.Tensor, weights_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum_j wa_j A_j, (sum_i wb_i B_i)^T): one rank-r LoRA (LoraHub, PEMs; cross terms B_i A_j included)."""
        a = torch.einsum("n,nri->ri", weights_a.to(self.a.dtype), self.a.view(self.n, self.r, -1))
        return a, torch.einsum("n,nro->ro", weights_b.to(self.b.dtype), self.b)

    def factor_mix(self, x: torch.Tensor, weights_a: torch.Tensor, weights_b: torch.Tensor) -> LowRank:
        """(sum_i wb_i B_i)(sum_j wa_j A_j) x at the cost of one rank-r LoRA per token, whatever N is."""
        a, b_t = self.factor_sum(weights_a, weights_b)
        return x @ a.T, b_t


class BankedLinear(nn.Module):
    """A frozen base linear plus a bank of frozen LoRAs, mixed by `mixer(layer, x) -> (left, right)` with delta
    left @ right: right (K, d_out) shared by the batch or (batch, K, d_out) per sample (most mixers start from
    `layer.bank.low_rank(x)`)."""

    def __init__(self, name: str, base: nn.Linear, bank: LoraBank, mixer: Callable):
        super().__init__()
        self.name, self.base, self.bank, self.mixer = name, base, bank, mixer

    @property
    def weight(self) -> torch.Tensor:  # modelling code reads it (T5 checks wo.weight.dtype)
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.mixer(self, x)
        y = self.base(x)
        left, right = left.to(y.dtype), right.to(y.dtype)
        if right.dim() == 2:
            return torch.addmm(y.flatten(0, -2), left.flatten(0, -2), right).view_as(y)
        return torch.baddbmm(y, left, right)


def module_key(name: str) -> str:
    """A banked layer's module name as a key of the nn.ModuleDict that holds its gate or router (no dots allowed)."""
    return name.replace(".", "_")


def merge_banks(model: nn.Module, delta) -> None:
    """Replace every BankedLinear by its base linear with `delta(layer)` added to the weight (no cost per token)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, BankedLinear):
            with torch.no_grad():
                module.base.weight += delta(module).to(module.base.weight.dtype)
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.base)


def target_modules(experts: list[Expert]) -> list[str]:
    """Modules adapted by at least one expert, in a fixed order."""
    return sorted({m for e in experts for m in e.factors})


def inject(model: nn.Module, experts: list[Expert], mixer: Callable) -> list[BankedLinear]:
    """Replace every LoRA-adapted linear of `model` by a BankedLinear over `experts`. Returns the layers in model order."""
    if not experts:
        raise ValueError("inject needs at least one expert")
    names = set(target_modules(experts))
    for p in model.parameters():
        p.requires_grad_(False)
    layers = []
    for name, module in list(model.named_modules()):
        if name not in names:
            continue
        bank = LoraBank([e.factors.get(name) for e in experts], module.in_features, module.out_features,
                        dtype=module.weight.dtype).to(module.weight.device)
        layer = BankedLinear(name, module, bank, mixer)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, layer)
        layers.append(layer)
    return layers
