"""The unified SDL model (the paper's Section 2): x_q = sigma(W_E x_p), x_hat_r = W_D x_q.

One class instantiates every method: SAE, tied SAE, transcoder and crosscoder differ only in the (x_p, x_r) view
they are fed and in whether W_D = W_E^T (see :mod:`sdl_paper.theory.instantiations`). Biases are off by default, as in the theory.

Shapes: W_E is (n_q, n_p), W_D is (n_r, n_q); batches are rows: x_p (B, n_p), x_q (B, n_q), x_hat_r (B, n_r).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .activations import make_activation
from ..data.ground_truth import GroundTruth


class SDL(nn.Module):
    """Encoder-activation-decoder dictionary.

    Args:
        n_p: input width (x_p). n_q: number of latents (dictionary size). n_r: target width (x_r), default n_p.
        activation: spec for :func:`sdl_paper.theory.activations.make_activation`, e.g. ``"relu"``, ``"topk:4"``.
        tied: W_D = W_E^T (needs n_r = n_p); only W_E is a parameter.
        bias: add an encoder bias b_E (n_q,) and a decoder bias b_D (n_r,), both initialised to zero.
        init_scale: norm of each decoder column at initialisation. W_E starts as W_D^T when n_r = n_p, else
            Gaussian with rows of norm about init_scale.
        seed: seed of the initialisation.
    """

    def __init__(self, n_p: int, n_q: int, n_r: int | None = None, activation: str = "relu", tied: bool = False,
                 bias: bool = False, init_scale: float = 1.0, seed: int = 0):
        super().__init__()
        n_r = n_p if n_r is None else n_r
        for name, v in (("n_p", n_p), ("n_q", n_q), ("n_r", n_r)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        if tied and n_r != n_p:
            raise ValueError(f"tied=True needs n_r == n_p (W_D = W_E^T), got n_p={n_p}, n_r={n_r}")
        if not init_scale > 0:
            raise ValueError(f"init_scale={init_scale!r} must be > 0")
        self.n_p, self.n_q, self.n_r, self.tied = n_p, n_q, n_r, tied
        self.activation_spec = activation
        self.sigma = make_activation(activation)
        g = torch.Generator().manual_seed(seed)
        D = torch.randn(n_r, n_q, generator=g)
        D = init_scale * D / D.norm(dim=0, keepdim=True)
        E = D.T.clone() if n_r == n_p else torch.randn(n_q, n_p, generator=g) * init_scale / n_p ** 0.5
        self.W_E = nn.Parameter(E)                                   # (n_q, n_p)
        self._W_D = None if tied else nn.Parameter(D)                # (n_r, n_q)
        self.b_E = nn.Parameter(torch.zeros(n_q)) if bias else None
        self.b_D = nn.Parameter(torch.zeros(n_r)) if bias else None

    @classmethod
    def from_weights(cls, W_E: Tensor, W_D: Tensor | None, sigma: nn.Module, label: str, b_E: Tensor | None = None,
                     b_D: Tensor | None = None) -> "SDL":
        """An SDL holding copies of given weights (W_D None: tied) and the activation module ``sigma``, named
        ``label`` (for a sigma a spec cannot express, such as per-latent JumpReLU thresholds)."""
        n_q, n_p = W_E.shape
        m = cls(n_p, n_q, n_p if W_D is None else W_D.shape[0], tied=W_D is None, bias=b_E is not None)
        with torch.no_grad():
            m.W_E.copy_(W_E)
            if W_D is not None:
                m._W_D.copy_(W_D)
            if b_E is not None:
                m.b_E.copy_(b_E)
                m.b_D.copy_(b_D)
        m.sigma, m.activation_spec = sigma, label
        return m

    @property
    def W_D(self) -> Tensor:
        """Decoder (n_r, n_q); W_E^T when tied."""
        return self.W_E.T if self.tied else self._W_D

    def pre_activation(self, x_p: Tensor) -> Tensor:
        """z = W_E x_p (+ b_E), shape (B, n_q)."""
        z = x_p @ self.W_E.T
        return z if self.b_E is None else z + self.b_E

    def encode(self, x_p: Tensor) -> Tensor:
        """x_q = sigma(W_E x_p), shape (B, n_q)."""
        return self.sigma(self.pre_activation(x_p))

    def decode(self, x_q: Tensor) -> Tensor:
        """x_hat_r = W_D x_q (+ b_D), shape (B, n_r)."""
        out = x_q @ self.W_D.T
        return out if self.b_D is None else out + self.b_D

    def forward(self, x_p: Tensor) -> tuple[Tensor, Tensor]:
        """(x_hat_r, x_q)."""
        x_q = self.encode(x_p)
        return self.decode(x_q), x_q

    def extra_repr(self) -> str:
        return (f"n_p={self.n_p}, n_q={self.n_q}, n_r={self.n_r}, activation={self.activation_spec!r}, "
                f"tied={self.tied}, bias={self.b_E is not None}")


def sdl_loss(model: SDL, x_p: Tensor, x_r: Tensor) -> Tensor:
    """Monte Carlo L_SDL on a batch: mean over rows of ||x_r - W_D sigma(W_E x_p)||^2 (a scalar)."""
    x_hat, _ = model(x_p)
    return (x_r - x_hat).pow(2).sum(-1).mean()


def per_feature_residuals(model: SDL, gt: GroundTruth) -> Tensor:
    """||w_r^d - W_D sigma(W_E w_p^d)||^2 for every feature d, shape (n,): each feature presented alone, x_d = 1.

    A batch-coupled sigma (BatchTopK) sees each feature as a batch of one, where it acts as TopK.
    """
    x_p = gt.W_p.T.to(model.W_E)                      # the n columns as a batch: (n, n_p)
    if getattr(model.sigma, "batch_coupled", False):
        x_hat = torch.cat([model(row[None])[0] for row in x_p])
    else:
        x_hat, _ = model(x_p)                         # (n, n_r)
    return (gt.W_r.T.to(model.W_E) - x_hat).pow(2).sum(-1)


def per_feature_loss(model: SDL, gt: GroundTruth) -> Tensor:
    """The paper's L~(W_D, W_E) = sum_d M_d ||w_r^d - W_D sigma(W_E w_p^d)||^2 (a scalar).

    Equals L_SDL up to O(n^2 (1 - S)^2) in the extreme-sparsity regime for positively homogeneous sigma (Thm 3.1).
    """
    return (gt.M_d().to(model.W_E) * per_feature_residuals(model, gt)).sum()


@torch.no_grad()
def loss_summary(model: SDL, gt: GroundTruth, n_samples: int = 20000, seed: int = 1) -> dict[str, float]:
    """Monte Carlo L_SDL on a seeded sample, the zero-dictionary loss E||x_r||^2 and the explained variance
    1 - L_SDL / E||x_r - E x_r||^2 (mean subtracted)."""
    device = model.W_E.device
    _, x_p, x_r = gt.sample(n_samples, torch.Generator().manual_seed(seed))
    x_p, x_r = x_p.to(device), x_r.to(device)
    loss = sdl_loss(model, x_p, x_r).item()
    total_var = (x_r - x_r.mean(0)).pow(2).sum(-1).mean().item()
    return {"L_SDL": loss, "baseline": x_r.pow(2).sum(-1).mean().item(), "explained_variance": 1 - loss / total_var}
