"""The loss approximation (the paper's Theorem 3.1): L_SDL against the per-feature loss L~.

Without biases an input with no active feature costs nothing, so by the law of total expectation

    L_SDL = P(one active) E[loss | one active] + P(>= 2 active) E[loss | >= 2 active].

For a positively homogeneous sigma the first term is exactly L~ (an input x_d e_d costs
x_d^2 ||w_r^d - W_D sigma(W_E w_p^d)||^2), so the gap L_SDL - L~ = P(>= 2) E[loss | >= 2] is non-negative and at most
C(n, 2) (1 - S)^2 E[loss | >= 2] by a union bound over pairs. The functions here estimate each term separately,
sampling *conditionally* on the number of active features, so the gap is measured precisely even when it is tiny.
Conditional sampling assumes one sparsity S for all features.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .data import GroundTruth
from .framework import SDL, per_feature_loss


def count_probabilities(n: int, S: float) -> Tensor:
    """P(K = k) for k = 0..n, K ~ Binomial(n, 1 - S) the number of active features (float64, shape (n+1,))."""
    p = 1.0 - S
    k = torch.arange(n + 1, dtype=torch.float64)
    log_binom = torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64)) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
    return torch.exp(log_binom + k * math.log(p) + (n - k) * math.log1p(-p)) if p < 1 else (k == n).double()


def p_multi(n: int, S: float) -> float:
    """P(at least two of n independent features are active), each active with probability 1 - S."""
    return float(count_probabilities(n, S)[2:].sum())


def sample_given_count(gt: GroundTruth, k_min: int, n_samples: int, generator: torch.Generator,
                       k_max: int | None = None) -> Tensor:
    """Codes x (n_samples, n) drawn from the data law conditioned on k_min <= #active <= k_max (default n).

    Exact for a scalar S: draw the count from the conditioned binomial, then that many distinct features uniformly.
    """
    coef = gt.coefficients
    if torch.as_tensor(coef.S).ndim != 0:
        raise ValueError("conditional sampling needs one sparsity S for all features")
    n, k_max = gt.n, gt.n if k_max is None else k_max
    if not 1 <= k_min <= k_max <= n:
        raise ValueError(f"need 1 <= k_min <= k_max <= n={n}, got k_min={k_min}, k_max={k_max}")
    probs = count_probabilities(n, float(coef.S))[k_min:k_max + 1]
    counts = k_min + torch.multinomial(probs / probs.sum(), n_samples, replacement=True, generator=generator)
    ranks = torch.rand(n_samples, n, generator=generator).argsort(dim=1).argsort(dim=1)  # random permutation ranks
    mask = ranks < counts[:, None]
    mags = coef.c_min + coef.beta * torch.empty(n_samples, n).exponential_(1.0, generator=generator)
    return (mask * mags).to(gt.W_p.dtype)


@torch.no_grad()
def conditional_loss(model: SDL, gt: GroundTruth, x: Tensor) -> tuple[float, float, float]:
    """Mean, standard error and maximum of ||x_r - W_D sigma(W_E x_p)||^2 over the codes x (N, n)."""
    x = x.to(model.W_E)
    err = (x @ gt.W_r.T.to(x) - model(x @ gt.W_p.T.to(x))[0]).pow(2).sum(-1).double()
    return err.mean().item(), (err.std() / len(err) ** 0.5).item(), err.max().item()


@torch.no_grad()
def loss_split(model: SDL, gt: GroundTruth, n_samples: int = 20000, seed: int = 0) -> dict[str, float]:
    """Every term of the decomposition at the data law of ``gt`` (scalar S).

    Returns a dict with: ``L_tilde`` (exact), ``single`` = P(one) E[loss | one] and ``gap`` = P(>=2) E[loss | >=2]
    (Monte Carlo, with standard errors ``single_se`` and ``gap_se``), ``L_SDL`` = single + gap, ``p_single``,
    ``p_multi``, ``C_multi`` = E[loss | >= 2], ``C_max`` = the largest loss seen among those samples,
    ``union_bound`` = C(n, 2) (1 - S)^2 C_multi and ``paper_bound`` = n^2 (1 - S)^2 C_max.
    """
    g = torch.Generator().manual_seed(seed)
    S, n = float(gt.coefficients.S), gt.n
    probs = count_probabilities(n, S)
    p1, p2 = probs[1].item(), probs[2:].sum().item()
    m1, se1, _ = conditional_loss(model, gt, sample_given_count(gt, 1, n_samples, g, k_max=1))
    if n >= 2:
        m2, se2, c_max = conditional_loss(model, gt, sample_given_count(gt, 2, n_samples, g))
    else:
        m2 = se2 = c_max = 0.0
    single, gap = p1 * m1, p2 * m2
    return {"S": S, "L_tilde": per_feature_loss(model, gt).item(), "single": single, "single_se": p1 * se1,
            "gap": gap, "gap_se": p2 * se2, "L_SDL": single + gap, "p_single": p1, "p_multi": p2,
            "C_multi": m2, "C_max": c_max, "union_bound": math.comb(n, 2) * (1 - S) ** 2 * m2,
            "paper_bound": n ** 2 * (1 - S) ** 2 * c_max}


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)[0])
