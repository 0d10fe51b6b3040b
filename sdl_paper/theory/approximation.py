"""The loss approximation (the paper's Theorem 3.1): L_SDL against the per-feature loss L~.

Without biases an input with no active feature costs nothing, so by the law of total expectation

    L_SDL = P(one active) E[loss | one active] + P(>= 2 active) E[loss | >= 2 active].

For a positively homogeneous sigma the first term is exactly L~ (an input x_d e_d costs
x_d^2 ||w_r^d - W_D sigma(W_E w_p^d)||^2), so the gap L_SDL - L~ = P(>= 2) E[loss | >= 2] is non-negative and at most
C(n, 2) (1 - S)^2 E[loss | >= 2] by a union bound over pairs. The functions here estimate each term separately,
sampling *conditionally* on the number of active features, so the gap is measured precisely even when it is tiny.
Conditional sampling assumes one sparsity S for all features.

For JumpReLU (not homogeneous) the one-feature term is not L~: :func:`jumprelu_single_exact` integrates it exactly
over exponential magnitudes, and :func:`identity_jumprelu_closed_form` gives the closed form of a counterexample to
the theorem's bound (identity dictionaries, uniform magnitudes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.ground_truth import Coefficients, GroundTruth
from .framework import SDL, per_feature_residuals


@dataclass(frozen=True)
class Uniform:
    """Magnitudes of active features uniform on [low, high] (instead of the generator's c_min + Exp(beta))."""

    low: float
    high: float

    def __post_init__(self):
        if not 0 <= self.low < self.high:
            raise ValueError(f"need 0 <= low < high, got low={self.low}, high={self.high}")

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        return self.low + (self.high - self.low) * torch.rand(shape, generator=generator, dtype=torch.float64)

    def second_moment(self) -> float:
        """E[t^2]."""
        return self.moment_below(self.high)

    def moment_below(self, theta: float) -> float:
        """E[t^2 1[t <= theta]] = (min(theta, high)^3 - low^3) / (3 (high - low)), 0 if theta <= low."""
        top = min(max(theta, self.low), self.high)
        return (top ** 3 - self.low ** 3) / (3 * (self.high - self.low))


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
                       k_max: int | None = None, magnitudes: Uniform | None = None) -> Tensor:
    """Codes x (n_samples, n) drawn from the data law conditioned on k_min <= #active <= k_max (default n).

    Exact for a scalar S: draw the count from the conditioned binomial, then that many distinct features uniformly.
    Active magnitudes follow ``gt.coefficients`` (c_min + Exp(beta)) or, if given, the law ``magnitudes``.
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
    if magnitudes is None:
        mags = coef.c_min + coef.beta * torch.empty(n_samples, n).exponential_(1.0, generator=generator)
    else:
        mags = magnitudes.sample((n_samples, n), generator)
    return (mask * mags).to(gt.W_p.dtype)


@torch.no_grad()
def sample_losses(model: SDL, gt: GroundTruth, x: Tensor) -> Tensor:
    """||x_r - W_D sigma(W_E x_p)||^2 for every code x (N, n), shape (N,), float64."""
    x = x.to(model.W_E)
    return (x @ gt.W_r.T.to(x) - model(x @ gt.W_p.T.to(x))[0]).pow(2).sum(-1).double()


def conditional_loss(model: SDL, gt: GroundTruth, x: Tensor) -> tuple[float, float, float]:
    """Mean, standard error and maximum of ||x_r - W_D sigma(W_E x_p)||^2 over the codes x (N, n)."""
    err = sample_losses(model, gt, x)
    return err.mean().item(), (err.std() / len(err) ** 0.5).item(), err.max().item()


def one_feature_weights(gt: GroundTruth, magnitudes: Uniform | None = None) -> Tensor:
    """M_d = P(only d active) E[x_d^2 | x_d > 0] (n,), for the generator's magnitudes or the law ``magnitudes``."""
    if magnitudes is None:
        return gt.M_d()
    p = gt.coefficients.p
    return p * torch.prod(1 - p) / (1 - p) * magnitudes.second_moment()


@torch.no_grad()
def loss_split(model: SDL, gt: GroundTruth, n_samples: int = 20000, seed: int = 0,
               magnitudes: Uniform | None = None) -> dict[str, float]:
    """Every term of the decomposition at the data law of ``gt`` (scalar S; ``magnitudes`` as in
    :func:`sample_given_count`).

    Returns a dict with: ``L_tilde`` (exact), ``single`` = P(one) E[loss | one] and ``gap`` = P(>=2) E[loss | >=2]
    (Monte Carlo, with standard errors ``single_se`` and ``gap_se``), ``L_SDL`` = single + gap, ``p_single``,
    ``p_multi``, ``C_multi`` = E[loss | >= 2], ``C_max`` = the largest loss seen among those samples,
    ``union_bound`` = C(n, 2) (1 - S)^2 C_multi and ``paper_bound`` = n^2 (1 - S)^2 C_max.
    """
    g = torch.Generator().manual_seed(seed)
    S, n = float(gt.coefficients.S), gt.n
    probs = count_probabilities(n, S)
    p1, p2 = probs[1].item(), probs[2:].sum().item()
    m1, se1, _ = conditional_loss(model, gt, sample_given_count(gt, 1, n_samples, g, 1, magnitudes))
    if n >= 2:
        m2, se2, c_max = conditional_loss(model, gt, sample_given_count(gt, 2, n_samples, g, None, magnitudes))
    else:
        m2 = se2 = c_max = 0.0
    weights = one_feature_weights(gt, magnitudes).to(model.W_E)
    L_tilde = (weights * per_feature_residuals(model, gt)).sum().item()
    single, gap = p1 * m1, p2 * m2
    return {"S": S, "L_tilde": L_tilde, "single": single, "single_se": p1 * se1,
            "gap": gap, "gap_se": p2 * se2, "L_SDL": single + gap, "p_single": p1, "p_multi": p2,
            "C_multi": m2, "C_max": c_max, "union_bound": math.comb(n, 2) * (1 - S) ** 2 * m2,
            "paper_bound": n ** 2 * (1 - S) ** 2 * c_max}


@torch.no_grad()
def plain_loss(model: SDL, gt: GroundTruth, n_samples: int, seed: int = 0, chunk: int = 50000) -> tuple[float, float]:
    """Plain Monte Carlo L_SDL (unconditioned draws from ``gt``'s law): (mean, standard error)."""
    g, total, total_sq, done = torch.Generator().manual_seed(seed), 0.0, 0.0, 0
    while done < n_samples:
        x = gt.coefficients.sample(min(chunk, n_samples - done), g, dtype=gt.W_p.dtype)
        err = sample_losses(model, gt, x)
        total, total_sq, done = total + err.sum().item(), total_sq + err.pow(2).sum().item(), done + len(err)
    mean = total / done
    return mean, math.sqrt(max(total_sq / done - mean ** 2, 0.0) / (done - 1))


def _tail_second_moment(s: Tensor, c_min: float, beta: float) -> Tensor:
    """E[t^2 1[t > s]] for t = c_min + Exp(beta), elementwise in s (float64; s = inf gives 0)."""
    u = ((s - c_min) / beta).clamp(min=0.0)
    poly = c_min ** 2 + 2 * c_min * beta * (u + 1) + beta ** 2 * (u ** 2 + 2 * u + 2)
    return torch.where(torch.isinf(u), torch.zeros_like(u), torch.exp(-u) * poly)


@torch.no_grad()
def jumprelu_single_exact(model: SDL, gt: GroundTruth, t_split: float = 1.0) -> dict[str, float]:
    """Exact one-feature term of L_SDL for a JumpReLU dictionary, magnitudes t = c_min + Exp(beta) (scalar S).

    For feature d alone with magnitude t, latent i fires iff t z_i > theta_i (z = W_E w_p^d), i.e. iff
    t > tau_i = theta_i / z_i (z_i > 0), so the loss is t^2 r_d(t) with r_d piecewise constant between the sorted
    tau_i; each piece is integrated in closed form. Returns ``single`` = sum_d P(only d) E[loss_d(t)], ``L_tilde``
    (the paper's L~, which uses r_d(1)) and the excess single - L~ split at t_split (default 1) into
    ``excess_below`` (t <= t_split: only switch-offs of latents firing at t = 1) and ``excess_above``
    (t > t_split: only latents switching on).
    """
    c = gt.coefficients
    theta = torch.as_tensor(getattr(model.sigma, "theta", 0.0), dtype=torch.float64).expand(model.n_q)
    W_D, Z = model.W_D.double(), gt.W_p.double().T @ model.W_E.double().T   # Z (n, n_q): z for each feature
    only = c.p * torch.prod(1 - c.p) / (1 - c.p)                            # P(only d active), (n,)
    T = lambda s: _tail_second_moment(s, c.c_min, c.beta)
    mass = lambda a, b: (T(a) - T(b)).clamp(min=0)                          # E[t^2 1[a < t <= b]]
    zero, inf = torch.zeros(1, dtype=torch.float64), torch.full((1,), math.inf, dtype=torch.float64)
    out = dict.fromkeys(["single", "L_tilde", "excess_below", "excess_above"], 0.0)
    for d in range(gt.n):
        z = Z[d]
        tau, order = torch.where(z > 0, theta / z.clamp(min=1e-300), inf).sort()
        fired = torch.cat([zero[None].expand(1, W_D.shape[0]), (W_D[:, order] * z[order]).T.cumsum(0)])
        r = (gt.W_r.double()[:, d] - fired).pow(2).sum(1)          # r_d on the n_q + 1 pieces (k latents fired)
        lo, hi = torch.cat([zero, tau]), torch.cat([tau, inf])
        r1 = r[int((tau < 1.0).sum())]                             # residual at t = 1
        split = torch.tensor(t_split, dtype=torch.float64)
        below = (r * mass(lo, hi.clamp(max=t_split))).sum() - r1 * mass(zero, split)
        above = (r * mass(lo.clamp(min=t_split), hi)).sum() - r1 * T(split)
        w = only[d].item()
        out["L_tilde"] += w * (r1 * T(zero)).item()
        out["excess_below"] += w * below.item()
        out["excess_above"] += w * above.item()
    out["single"] = out["L_tilde"] + out["excess_below"] + out["excess_above"]
    return out


def identity_jumprelu_closed_form(n: int, theta: float, magnitudes: Uniform, p) -> dict:
    """Closed form of L_SDL, L~ and the paper's bound for W_p = W_r = W_E = W_D = I_n and a JumpReLU(theta) SAE.

    Features are independent with P(active) = p (scalar or array) and magnitudes ``magnitudes``. The loss of a code
    x is sum_d x_d^2 1[x_d <= theta] (a latent fires iff x_d > theta), so L_SDL = n p m with
    m = E[t^2 1[t <= theta]]; L~ = sum_d M_d 1[theta >= 1]; C = sup_s loss = n min(theta, high)^2 (for
    theta >= low); the paper's bound is n^2 C p^2. The one-feature term with the magnitudes averaged (not at t = 1)
    is n p (1 - p)^(n-1) m, leaving a gap of n p m (1 - (1 - p)^(n-1)) = O(p^2). ``p_star`` = the p below which
    the paper's bound fails, (n m - L~/p) / (n^2 C) for L~ = 0.
    """
    p = np.asarray(p, dtype=float)
    m = magnitudes.moment_below(theta)
    C = n * (min(theta, magnitudes.high) ** 2 if theta >= magnitudes.low else 0.0)
    L_sdl = n * p * m
    L_tilde = n * p * (1 - p) ** (n - 1) * magnitudes.second_moment() * float(theta >= 1)
    single_avg = n * p * (1 - p) ** (n - 1) * m
    return {"m": m, "C": C, "L_SDL": L_sdl, "L_tilde": L_tilde, "gap": L_sdl - L_tilde,
            "bound": n ** 2 * C * p ** 2, "single_avg": single_avg, "gap_avg": L_sdl - single_avg,
            "p_star": n * m / (n ** 2 * C) if theta < 1 and C > 0 else float("nan")}


def identity_jumprelu(n: int, theta: float, S: float) -> tuple[SDL, GroundTruth]:
    """The counterexample's dictionary (W_E = W_D = I_n, JumpReLU(theta)) and world (W_p = W_r = I_n, sparsity S)."""
    model = SDL(n, n, activation=f"jumprelu:{theta}")
    with torch.no_grad():
        model.W_E.copy_(torch.eye(n))
        model.W_D.copy_(torch.eye(n))
    return model, GroundTruth(torch.eye(n), torch.eye(n), Coefficients(n, S))


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)[0])


def identity_check(model: SDL, gt: GroundTruth, n_plain: int, split: dict, seed: int = 0) -> dict[str, float]:
    """Plain Monte Carlo L_SDL against L~ + P(K >= 2) E[loss | K >= 2], the identity, with ``split`` the
    :func:`loss_split` of ``model`` at ``gt``'s law.

    Returns ``plain`` and ``plain_se``, ``z`` = (plain - L~ - gap) in combined standard errors, and ``power`` = the
    gap in the same units (how many standard errors separate the identity from "the gap is zero").
    """
    plain, plain_se = plain_loss(model, gt, n_plain, seed)
    se = math.hypot(plain_se, split["gap_se"])
    return {"plain": plain, "plain_se": plain_se, "z": (plain - split["L_tilde"] - split["gap"]) / se,
            "power": split["gap"] / se}


def counterexample_table(n: int, theta: float, magnitudes: Uniform, ps, n_samples: int, seed: int = 0) -> list[dict]:
    """Monte Carlo against closed form for the identity JumpReLU counterexample, one row per p in ``ps``.

    Each row: ``p``; ``gap_mc`` = L_SDL - L~ (Monte Carlo L_SDL, L~ from the package) with standard error ``se``;
    ``gap_exact`` and the paper's ``bound`` n^2 C p^2 (closed form); ``L_tilde``; ``C_max`` (largest sampled loss);
    ``multi_mc`` = P(K >= 2) E[loss | K >= 2] with ``multi_se`` and its closed form ``multi_exact`` (the gap left
    once the one-feature term averages over magnitudes).
    """
    rows = []
    for i, p in enumerate(ps):
        model, gt = identity_jumprelu(n, theta, 1 - p)
        mc = loss_split(model, gt, n_samples, seed + i, magnitudes=magnitudes)
        cf = identity_jumprelu_closed_form(n, theta, magnitudes, p)
        se = math.hypot(mc["single_se"], mc["gap_se"])
        rows.append({"p": p, "gap_mc": mc["L_SDL"] - mc["L_tilde"], "se": se,
                     "gap_exact": float(cf["gap"]), "bound": float(cf["bound"]), "L_tilde": mc["L_tilde"],
                     "C_max": mc["C_max"], "multi_mc": mc["gap"], "multi_se": mc["gap_se"],
                     "multi_exact": float(cf["gap_avg"])})
    return rows
