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
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from .activations import LiteralTopK
from ..data.ground_truth import Coefficients, GroundTruth


def pattern(W_E: Tensor, sigma: nn.Module, W_p: Tensor, b_E: Tensor | None = None) -> Tensor:
    """F (n_q, n), bool: F[i, d] is True when feature d alone (x_p = w_p^d) fires latent i, i.e. when
    sigma(W_E w_p^d + b_E)_i != 0 (``b_E`` (n_q,): an encoder bias, e.g. of an imported SAELens SAE)."""
    Z = W_p.T @ W_E.T
    return (sigma(Z if b_E is None else Z + b_E.to(Z)) != 0).T


def pattern_counts(F: Tensor) -> dict[str, int]:
    """Numbers of dead (|F_i| = 0), monosemantic (|F_i| = 1) and polysemantic (|F_i| >= 2) latents."""
    size = F.sum(dim=1)
    return {"pattern_dead": int((size == 0).sum()), "monosemantic": int((size == 1).sum()),
            "polysemantic": int((size >= 2).sum())}


def tilde_loss(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module | None = None,
               F: Tensor | None = None) -> Tensor:
    """L~(W_D, W_E) = sum_d M_d ||w_r^d - W_D sigma(W_E w_p^d)||^2 (a scalar), of a bias-free dictionary (the
    paper's; with biases the per-feature split of L_SDL fails, so :func:`sdl_paper.theory.audit.audit` refuses
    to compute it for a dictionary with biases).

    A batch-coupled sigma (BatchTopK) ranks the n unit-magnitude inputs w_p^d together as one batch (the book's
    reading; the paper does not say). With ``F`` given, sigma is replaced by the fixed mask of that pattern: the region's quadratic, smooth in both
    blocks, equal to L~ wherever the encoder's pattern is F.
    """
    Z = W_E @ gt.W_p.to(W_E)                                     # (n_q, n): W_E w_p^d as columns
    A = F.to(Z) * Z if F is not None else sigma(Z.T).T          # (n_q, n): sigma(W_E w_p^d)
    R = gt.W_r.to(W_E) - W_D @ A                                  # (n_r, n): residuals
    return (gt.M_d().to(W_E) * R.pow(2).sum(0)).sum()


def block_gradients(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module | None = None,
                    F: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(dL~/dW_E, dL~/dW_D) at (W_E, W_D), computed with the pattern held fixed (the derivative inside the region).

    The pattern is ``F`` (n_q, n) when given (e.g. from :func:`sdl_paper.model.measures.feature_pattern`), else that of
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


def positive_pattern(W_E: Tensor, sigma: nn.Module, W_p: Tensor) -> Tensor:
    """F (n_q, n), bool, with the paper's literal definition F[i, d] = [sigma(W_E w_p^d)_i > 0]."""
    return (sigma(W_p.T @ W_E.T) > 0).T


def line_losses(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, ts: Tensor,
                dE: Tensor | None = None, dD: Tensor | None = None) -> Tensor:
    """L~(W_D + t dD, W_E + t dE) for every t in ``ts`` (T,), computed in one batch; returns shape (T,).

    Equals :func:`tilde_loss` at each t. Row-wise activations are applied to all T * n single-feature inputs at
    once; an activation that ranks a batch (BatchTopK) is applied to each t's n inputs separately.
    """
    T = ts.reshape(-1, 1, 1).to(W_E)
    E = W_E + T * (dE if dE is not None else torch.zeros_like(W_E))         # (T, n_q, n_p)
    D = W_D + T * (dD if dD is not None else torch.zeros_like(W_D))         # (T, n_r, n_q)
    Zt = (E @ gt.W_p.to(W_E)).transpose(1, 2)                                # (T, n, n_q)
    batched = any(type(m).__name__ == "BatchTopK" for m in sigma.modules())
    A = torch.stack([sigma(z) for z in Zt]) if batched else sigma(Zt.reshape(-1, Zt.shape[-1])).reshape(Zt.shape)
    R = gt.W_r.to(W_E) - D @ A.transpose(1, 2)                               # (T, n_r, n)
    return (gt.M_d().to(W_E) * R.pow(2).sum(1)).sum(-1)




def encoder_block_min(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module) -> tuple[Tensor, float]:
    """Minimise the encoder block L~(W_D, .) over the closure of the ReLU region of W_E (SLSQP, W_D fixed).

    The closed region is {z_id >= 0 for d in F_i, z_id <= 0 otherwise}, z_id = <w_E^i, w_p^d>, F the pattern of
    W_E; on it L~ equals the region's quadratic (the masked loss). Returns (W_E*, L~(W_D, W_E*)) with W_E* of shape
    (n_q, n_p); the solver's minimiser may lie on the boundary, where the pattern is smaller.
    """
    from scipy.optimize import minimize

    F = pattern(W_E, sigma, gt.W_p)
    s = (2 * F.double() - 1).reshape(-1)                                     # +1 member, -1 non-member
    J = (torch.kron(torch.eye(W_E.shape[0], dtype=torch.float64), gt.W_p.double().T.contiguous())
         * s[:, None]).numpy()                                               # rows: s_id * grad of z_id
    q = lambda x: tilde_loss(x.reshape(W_E.shape), W_D.double(), gt, F=F)   # noqa: E731 (quadratic in x)
    x0 = W_E.detach().double().reshape(-1)
    H = torch.autograd.functional.hessian(q, x0).numpy()
    g0, c0 = torch.autograd.functional.jacobian(q, torch.zeros_like(x0)).numpy(), q(torch.zeros_like(x0)).item()
    cons = [{"type": "ineq", "fun": lambda x: J @ x, "jac": lambda x: J}]
    with threadpool_limits(1, user_api="blas"):  # tiny LAPACK calls slow down ~100x on busy cores
        res = minimize(lambda x: (c0 + g0 @ x + 0.5 * x @ H @ x, g0 + H @ x), x0.numpy(), jac=True,
                       method="SLSQP", constraints=cons, options={"ftol": 1e-15, "maxiter": 2000})
    W = torch.as_tensor(res.x).reshape(W_E.shape).to(W_E)
    return W, q(W.double().reshape(-1)).item()


def line_patterns(W_E: Tensor, dE: Tensor, sigma: nn.Module, W_p: Tensor, ts: Tensor) -> Tensor:
    """Patterns of W_E + t dE for every t in ``ts`` (T,), in one batch: bool tensor (T, n_q, n).

    Equals :func:`pattern` at each t (BatchTopK is applied to each t's n single-feature inputs separately).
    """
    Zt = ((W_E + ts.reshape(-1, 1, 1).to(W_E) * dE) @ W_p.to(W_E)).transpose(1, 2)   # (T, n, n_q)
    batched = any(type(m).__name__ == "BatchTopK" for m in sigma.modules())
    A = torch.stack([sigma(z) for z in Zt]) if batched else sigma(Zt.reshape(-1, Zt.shape[-1])).reshape(Zt.shape)
    return (A != 0).transpose(1, 2)


def line_radius(W_E: Tensor, direction: Tensor, sigma: nn.Module, W_p: Tensor, t_max: float = 2.0,
                steps: int = 40) -> float:
    """:func:`region_radius` computed in one batch with :func:`line_patterns` (same grid, same result)."""
    grid = torch.arange(1, steps + 1, dtype=W_E.dtype) * (t_max / steps)
    P = line_patterns(W_E, direction, sigma, W_p, torch.cat([grid, -grid]))
    ok = (P == pattern(W_E, sigma, W_p)).flatten(1).all(1).reshape(2, steps).all(0)
    return t_max if bool(ok.all()) else int((~ok).nonzero()[0]) * t_max / steps


def block_line_convexity(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, block: str, n_lines: int,
                         generator: torch.Generator, points: int = 21, t_max: float = 2.0,
                         steps: int = 40) -> tuple[float, int]:
    """Smallest second difference of L~ along ``n_lines`` random lines in one block, inside the region of W_E.

    ``block`` is "decoder" (lines W_D + t dD, t in [-1, 1]; the region does not depend on W_D) or "encoder" (lines
    W_E + t dE, dE of unit norm, cut to the segment [-r, r] where the pattern stays that of W_E on a grid of
    ``steps`` points up to ``t_max``, as in :func:`region_radius`). Uses the true activation, not the region's
    mask. Returns (smallest second difference, number of lines with a non-empty segment).
    """
    worst, lines = float("inf"), 0
    for _ in range(n_lines):
        d = torch.randn((W_D if block == "decoder" else W_E).shape, generator=generator, dtype=W_E.dtype)
        r = 1.0
        if block == "encoder":
            d = d / d.norm()
            r = line_radius(W_E, d, sigma, gt.W_p, t_max, steps)
        if r <= 0:
            continue
        ts = torch.linspace(-r, r, points, dtype=W_E.dtype)
        kw = {"dD": d} if block == "decoder" else {"dE": d}
        worst = min(worst, second_differences(line_losses(W_E, W_D, gt, sigma, ts, **kw)).min().item())
        lines += 1
    return worst, lines


def literal_topk_example() -> dict:
    """The smallest instance where Thm 3.2 fails for the paper's literal TopK with F_i defined by "> 0".

    One feature (w_p = w_r = 1, M_1 = 1), n_q = 3, k = 2, W_D = (0, -1, 1) and the encoder segment from
    A = (1, -1, -2)^T to B = (1, -2, -1)^T (shapes (3, 1)): latent 1 is kept and positive all along, the kept
    negative latent switches at the midpoint, so L~ = t^2 before it and (3 - t)^2 after it.
    """
    one = torch.ones(1, 1, dtype=torch.float64)
    return {"gt": GroundTruth(one, one, Coefficients(1, 0.5)), "sigma": LiteralTopK(2),
            "A": torch.tensor([[1.0], [-1.0], [-2.0]], dtype=torch.float64),
            "B": torch.tensor([[1.0], [-2.0], [-1.0]], dtype=torch.float64),
            "W_D": torch.tensor([[0.0, -1.0, 1.0]], dtype=torch.float64)}
