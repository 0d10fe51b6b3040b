"""Activation patterns and the regions they define (the paper's Definition 3.1 and Theorem 3.2).

The pattern of an encoder is P = (F_1, ..., F_{n_q}), F_i = the features that fire latent i when they appear alone;
here a boolean matrix F of shape (n_q, n) with F[i, d] = [sigma(W_E w_p^d)_i != 0]. On the region Omega_P of
encoders with pattern P, sigma(W_E w_p^d) = F[:, d] * (W_E w_p^d) is linear in W_E, so L~ is a quadratic in W_E for
fixed W_D and in W_D for fixed W_E, each convex, though the product W_D (F * W_E W_p) is not jointly convex.

Functions here take plain tensors (W_E is (n_q, n_p), W_D is (n_r, n_q)) so that they can be differentiated,
perturbed and searched freely.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .data import GroundTruth


def pattern(W_E: Tensor, sigma: nn.Module, W_p: Tensor) -> Tensor:
    """F (n_q, n), bool: F[i, d] is True when feature d alone fires latent i."""
    return (sigma((W_p.T @ W_E.T)) != 0).T


def pattern_counts(F: Tensor) -> dict[str, int]:
    """Numbers of dead (|F_i| = 0), monosemantic (|F_i| = 1) and polysemantic (|F_i| >= 2) latents."""
    size = F.sum(dim=1)
    return {"dead": int((size == 0).sum()), "monosemantic": int((size == 1).sum()),
            "polysemantic": int((size >= 2).sum())}


def tilde_loss(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module | None = None,
               F: Tensor | None = None) -> Tensor:
    """L~(W_D, W_E) = sum_d M_d ||w_r^d - W_D sigma(W_E w_p^d)||^2 (a scalar).

    With ``F`` given, sigma is replaced by the fixed mask of that pattern: the region's quadratic, smooth in both
    blocks, equal to L~ wherever the encoder's pattern is F.
    """
    Z = W_E @ gt.W_p.to(W_E)                                     # (n_q, n): W_E w_p^d as columns
    A = F.to(Z) * Z if F is not None else sigma(Z.T).T          # (n_q, n): sigma(W_E w_p^d)
    R = gt.W_r.to(W_E) - W_D @ A                                  # (n_r, n): residuals
    return (gt.M_d().to(W_E) * R.pow(2).sum(0)).sum()


def block_gradients(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module | None = None,
                    F: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(dL~/dW_E, dL~/dW_D) at (W_E, W_D), computed with the pattern held fixed (the derivative inside the region).

    The pattern is ``F`` (n_q, n) when given (e.g. from :func:`sdl_paper.trainer.feature_pattern`), else that of
    ``sigma``.
    """
    if F is None:
        F = pattern(W_E, sigma, gt.W_p)
    E, D = W_E.detach().clone().requires_grad_(True), W_D.detach().clone().requires_grad_(True)
    gE, gD = torch.autograd.grad(tilde_loss(E, D, gt, F=F), (E, D))
    return gE, gD


def joint_hessian(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module) -> Tensor:
    """Hessian of L~ inside the region of W_E, in the joint variable (vec W_E, vec W_D); shape (P, P), float64."""
    F = pattern(W_E, sigma, gt.W_p)
    nE = W_E.numel()
    gt64 = GroundTruth(gt.W_p.double(), gt.W_r.double(), gt.coefficients)

    def f(theta):
        return tilde_loss(theta[:nE].reshape(W_E.shape), theta[nE:].reshape(W_D.shape), gt64, F=F)

    theta = torch.cat([W_E.detach().double().reshape(-1), W_D.detach().double().reshape(-1)])
    return torch.autograd.functional.hessian(f, theta)


def second_differences(values: Tensor) -> Tensor:
    """f(t - h) - 2 f(t) + f(t + h) along a uniform grid of values (length m -> m - 2)."""
    return values[:-2] - 2 * values[1:-1] + values[2:]


def exact_decoder(W_E: Tensor, gt: GroundTruth, sigma: nn.Module) -> Tensor:
    """The W_D minimising L~ for fixed W_E: weighted least squares W_D = W_r M A^T (A M A^T)^+, A = sigma(W_E W_p).

    Dead latents (zero rows of A) get zero decoder columns (the minimum-norm solution).
    """
    A = sigma(gt.W_p.T.to(W_E) @ W_E.T).T                       # (n_q, n)
    M = gt.M_d().to(W_E)
    return (gt.W_r.to(W_E) * M) @ A.T @ torch.linalg.pinv((A * M) @ A.T)


def encoder_step(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, lr: float = 1.0,
                 max_halvings: int = 40) -> tuple[Tensor, float]:
    """One gradient step on the W_E block that stays in the region and lowers L~ (backtracking on the step size).

    Returns the new W_E and the step size used (0.0 when no step both keeps the pattern and decreases L~).
    """
    F = pattern(W_E, sigma, gt.W_p)
    g, _ = block_gradients(W_E, W_D, gt, sigma)
    f0 = tilde_loss(W_E, W_D, gt, F=F)
    step = lr
    for _ in range(max_halvings):
        cand = W_E - step * g
        if torch.equal(pattern(cand, sigma, gt.W_p), F) and tilde_loss(cand, W_D, gt, F=F) < f0:
            return cand, step
        step /= 2
    return W_E, 0.0


def alternating_minimisation(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, iters: int = 200,
                             encoder_steps: int = 5) -> dict[str, list[float]]:
    """Alternate the exact W_D solve with region-preserving gradient steps on W_E (Gorski et al. 2007's ACS).

    L~ never increases and the pattern never changes. Returns the history (loss, |grad W_E|, |grad W_D|) and the
    final blocks under keys ``W_E`` and ``W_D``.
    """
    hist = {"loss": [], "grad_E": [], "grad_D": []}
    F0 = pattern(W_E, sigma, gt.W_p)
    for _ in range(iters):
        W_D = exact_decoder(W_E, gt, sigma)
        for _ in range(encoder_steps):
            W_E, _ = encoder_step(W_E, W_D, gt, sigma)
        gE, gD = block_gradients(W_E, W_D, gt, sigma)
        hist["loss"].append(tilde_loss(W_E, W_D, gt, sigma).item())
        hist["grad_E"].append(gE.norm().item())
        hist["grad_D"].append(gD.norm().item())
    if not torch.equal(pattern(W_E, sigma, gt.W_p), F0):
        raise RuntimeError("the pattern changed during alternating minimisation: the region was left")
    hist["W_E"], hist["W_D"] = W_E, W_D
    return hist


def region_radius(W_E: Tensor, direction: Tensor, sigma: nn.Module, W_p: Tensor, t_max: float = 2.0,
                  steps: int = 40) -> float:
    """How far W_E + t * direction can go (both signs of t) on a grid of ``steps`` points before the pattern changes.

    Returns the last grid value at which the pattern was still that of W_E (0.0 if the first step leaves it).
    """
    F = pattern(W_E, sigma, W_p)
    for k in range(1, steps + 1):
        t = k * t_max / steps
        if not (torch.equal(pattern(W_E + t * direction, sigma, W_p), F)
                and torch.equal(pattern(W_E - t * direction, sigma, W_p), F)):
            return (k - 1) * t_max / steps
    return t_max


def midpoint_search(sigma: nn.Module, n_pairs: int, generator: torch.Generator, relabel: bool = False,
                    n: int = 3, n_q: int = 3, dim: int = 3) -> tuple[int, int]:
    """Search for non-convexity of regions: draw pairs of encoders (n_q, dim) over n orthonormal features, B a
    perturbation of A at a random scale (log-uniform in [0.05, 5], so pairs range from near to far apart), keep
    the pairs with the same pattern and test the points 1/4, 1/2, 3/4 of the way between them.

    With ``relabel`` the pairs share the pattern only up to a permutation of the latents (a union of regions, not
    a region). Returns (pairs tested, pairs with a point outside the pattern).
    """
    W_p = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))[0][:, :n]
    tried = violations = 0
    for _ in range(n_pairs):
        A = torch.randn(n_q, dim, generator=generator, dtype=torch.float64)
        scale = 0.05 * 100 ** torch.rand((), generator=generator, dtype=torch.float64)
        B = (A[torch.randperm(n_q, generator=generator)] if relabel else A) + scale * torch.randn(
            n_q, dim, generator=generator, dtype=torch.float64)
        FA, FB = pattern(A, sigma, W_p), pattern(B, sigma, W_p)
        same = (torch.equal(FA.sum(1).sort().values, FB.sum(1).sort().values) and not torch.equal(FA, FB)
                if relabel else torch.equal(FA, FB))
        if not same:
            continue
        tried += 1
        violations += any(not torch.equal(pattern((1 - t) * A + t * B, sigma, W_p), FA) for t in (0.25, 0.5, 0.75))
    return tried, violations
