"""Activation functions sigma of the unified SDL model, and a registry of them by name.

Every activation here satisfies the paper's standing property sigma(z)_i in {0, z_i}: it only ever keeps or
zeroes a coordinate. Each acts on pre-activations z of shape (B, n_q), row by row, except BatchTopK, which ranks
the whole batch.

Specs are strings, so that chapters and the command line can name them:
``"relu"``, ``"jumprelu:0.1"`` (theta), ``"topk:4"`` (k), ``"batchtopk:4"`` (k per sample on average) and
compositions applied left to right with ``">"``: ``"relu>topk:1"`` is the paper's "Top1 after ReLU".
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def topk_mask(z: Tensor, k: int, positive: bool = True) -> Tensor:
    """Boolean mask of the k largest entries of each row of z (..., n_q); ``positive``: only those that are > 0.

    The one definition of TopK's selection: the activation :class:`TopK`, the training objective's dense path and
    the theory's constructions all call it (the sparse training kernel :func:`sdl_paper.model.sparse.top_k`
    computes the same selection faster, tested against it).
    """
    idx = z.topk(k, dim=-1).indices
    mask = torch.zeros_like(z, dtype=torch.bool).scatter(-1, idx, True)
    return mask & (z > 0) if positive else mask


def batchtopk_mask(z: Tensor, k: int) -> Tensor:
    """Boolean mask of the k * B largest positive entries of a batch z (..., B, n_q), over the whole batch (one
    selection per leading index: per model when z is (K, B, n_q))."""
    B, n_q = z.shape[-2:]
    flat = z.reshape(*z.shape[:-2], B * n_q)
    idx = flat.topk(k * B, dim=-1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter(-1, idx, True).reshape(z.shape) & (z > 0)


class ReLU(nn.Module):
    """sigma(z) = max(z, 0). Positively homogeneous."""

    homogeneous = True

    def forward(self, z: Tensor) -> Tensor:
        return torch.relu(z)


class JumpReLU(nn.Module):
    """sigma(z) = z * H(z - theta) with a threshold theta > 0 (scalar or one per latent, shape (n_q,)).

    Not positively homogeneous: t * z may cross the threshold where z does not (Rajamanoharan et al. 2024b).
    """

    homogeneous = False

    def __init__(self, theta: float | Tensor = 0.0):
        super().__init__()
        theta = torch.as_tensor(theta, dtype=torch.float32)
        if not bool(torch.isfinite(theta).all()) or bool((theta < 0).any()):
            raise ValueError(f"jumprelu threshold theta must be finite and >= 0, got {theta}")
        self.register_buffer("theta", theta)

    def forward(self, z: Tensor) -> Tensor:
        return z * (z > self.theta)

    def extra_repr(self) -> str:
        return f"theta={self.theta.tolist() if self.theta.numel() < 5 else tuple(self.theta.shape)}"


class TopK(nn.Module):
    """Keep the k largest positive pre-activations of each row, zero the rest (Gao et al. 2024: ReLU o TopK)."""

    homogeneous = True
    name = "topk"
    keeps_negatives = False

    def __init__(self, k: int):
        super().__init__()
        if int(k) != k or k < 1:
            raise ValueError(f"{self.name} needs an integer k >= 1, got {k!r}")
        self.k = int(k)

    def forward(self, z: Tensor) -> Tensor:
        if self.k > z.shape[-1]:
            raise ValueError(f"{self.name} k={self.k} exceeds the number of latents n_q={z.shape[-1]}")
        return torch.where(topk_mask(z, self.k, positive=not self.keeps_negatives), z, 0.0)

    def extra_repr(self) -> str:
        return f"k={self.k}"


class LiteralTopK(TopK):
    """The paper's eq. 7 read literally: keep the k largest entries of each row (B, n_q), negative ones included,
    zero the rest. ``topk`` is ReLU after this; with the pattern defined by "> 0", this sigma is not the fixed mask
    of its pattern (the biconvexity chapter shows what that breaks). Spec ``literaltopk:K``."""

    name = "literaltopk"
    keeps_negatives = True


class BatchTopK(nn.Module):
    """Keep the k * B largest positive pre-activations of the whole batch (B, n_q) (Bussmann et al. 2024).

    Homogeneous only under one common scale of the whole batch: scaling one sample changes which latents of the
    other samples survive, so it is not positively homogeneous per sample, which the one-feature reduction needs.
    """

    homogeneous = False
    batch_coupled = True  # a sample's code depends on the other samples of its batch

    def __init__(self, k: int):
        super().__init__()
        if int(k) != k or k < 1:
            raise ValueError(f"batchtopk needs an integer k >= 1, got {k!r}")
        self.k = int(k)

    def forward(self, z: Tensor) -> Tensor:
        if self.k > z.shape[-1]:
            raise ValueError(f"batchtopk k={self.k} exceeds the number of latents n_q={z.shape[-1]}")
        return torch.where(batchtopk_mask(z.reshape(-1, z.shape[-1]), self.k).reshape(z.shape), z, 0.0)

    def extra_repr(self) -> str:
        return f"k={self.k}"


class Compose(nn.Module):
    """Apply activations left to right; keeps the {0, z_i} property since each part has it."""

    def __init__(self, *parts: nn.Module):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.homogeneous = all(p.homogeneous for p in parts)
        self.batch_coupled = any(getattr(p, "batch_coupled", False) for p in parts)

    def forward(self, z: Tensor) -> Tensor:
        for part in self.parts:
            z = part(z)
        return z


# name -> (constructor, name of its one numeric argument or None)
REGISTRY = {
    "relu": (ReLU, None),
    "jumprelu": (JumpReLU, "theta"),
    "topk": (TopK, "k"),
    "batchtopk": (BatchTopK, "k"),
    "literaltopk": (LiteralTopK, "k"),
}


def make_activation(spec: str) -> nn.Module:
    """Build an activation from a spec string such as ``"topk:4"`` or ``"relu>topk:1"`` (see module docstring)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"activation spec must be a non-empty string, got {spec!r}")
    parts = []
    for piece in spec.split(">"):
        name, _, arg = piece.strip().partition(":")
        if name not in REGISTRY:
            raise ValueError(f"unknown activation {name!r} in {spec!r}; known: {', '.join(REGISTRY)}")
        cls, arg_name = REGISTRY[name]
        if arg_name is None:
            if arg:
                raise ValueError(f"activation {name!r} takes no argument, got {piece!r}")
            parts.append(cls())
            continue
        if not arg:
            raise ValueError(f"activation {name!r} needs its {arg_name}, as in '{name}:<{arg_name}>'")
        try:
            value = float(arg) if arg_name == "theta" else int(arg)
        except ValueError:
            raise ValueError(f"activation {name!r}: {arg_name}={arg!r} is not a number") from None
        parts.append(cls(value))
    return parts[0] if len(parts) == 1 else Compose(*parts)


def keeps_or_zeroes(sigma: nn.Module, z: Tensor) -> bool:
    """Check sigma(z)_i in {0, z_i} for every entry of a batch z (B, n_q): the paper's standing assumption."""
    out = sigma(z)
    return bool(((out == 0) | (out == z)).all())
