"""Recovery metrics against ground truth: tensors in, numbers out.

The paper's metrics use the ENCODER rows as learned features (many-to-one matching allowed):
s_i = max_j |cos(learned_j, w_p^i)|, M_GT(tau) = mean_i 1[s_i > tau], M_IP = mean_i s_i.
"""
from __future__ import annotations

import torch
from torch import Tensor


def best_cosines(learned: Tensor, truth: Tensor) -> Tensor:
    """s_i = max_j |cos(learned_j, truth_i)| for every ground-truth column i.

    Args:
        learned: (n_q, d) learned directions as rows (e.g. W_E, or W_D^T).
        truth: (d, n) ground-truth directions as columns (e.g. W_p).

    Returns:
        (n,) best absolute cosine of each ground-truth feature.
    """
    L = learned / learned.norm(dim=1, keepdim=True).clamp_min(1e-12)
    T = truth / truth.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return (L @ T).abs().max(dim=0).values


def gt_recovery(learned: Tensor, truth: Tensor, tau: float = 0.95) -> float:
    """M_GT(tau): fraction of ground-truth features with a learned direction of |cos| > tau."""
    return (best_cosines(learned, truth) > tau).float().mean().item()


def max_inner_product(learned: Tensor, truth: Tensor) -> float:
    """M_IP: mean over ground-truth features of the best |cos| with a learned direction."""
    return best_cosines(learned, truth).mean().item()


def recovery(W_E: Tensor, W_D: Tensor, W_p: Tensor, W_r: Tensor, tau: float = 0.95) -> dict[str, float]:
    """M_GT(tau) and M_IP of one dictionary over its encoder rows (W_E (n_q, n_p) against W_p (n_p, n)) and over its
    decoder columns (W_D (n_r, n_q) against W_r (n_r, n)); keys M_GT_enc, M_IP_enc, M_GT_dec, M_IP_dec."""
    s_enc, s_dec = best_cosines(W_E, W_p), best_cosines(W_D.T, W_r)
    return {"M_GT_enc": (s_enc > tau).float().mean().item(), "M_IP_enc": s_enc.mean().item(),
            "M_GT_dec": (s_dec > tau).float().mean().item(), "M_IP_dec": s_dec.mean().item()}


def hungarian_mcc(W_D: Tensor, truth: Tensor) -> float:
    """SAELens-style MCC: one-to-one matching (scipy's Hungarian solver) of decoder columns W_D (d, n_q) to
    ground-truth columns (d, n) on |cos|; the mean |cos| over the min(n_q, n) matched pairs."""
    from scipy.optimize import linear_sum_assignment

    D = W_D / W_D.norm(dim=0, keepdim=True).clamp_min(1e-12)
    T = truth / truth.norm(dim=0, keepdim=True).clamp_min(1e-12)
    C = (D.T @ T).abs().double().cpu().numpy()          # (n_q, n)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].mean())


def l0(codes: Tensor) -> float:
    """Mean number of non-zero latents per sample; codes (B, n_q)."""
    return (codes != 0).float().sum(-1).mean().item()


def explained_variance(x_r: Tensor, x_hat: Tensor) -> float:
    """1 - E||x_r - x_hat||^2 / E||x_r - mean(x_r)||^2 (the mean IS subtracted; SAELens fixed this in 6.45.1)."""
    total = (x_r - x_r.mean(0)).pow(2).sum(-1).mean()
    return (1 - (x_r - x_hat).pow(2).sum(-1).mean() / total).item()


def dead_fraction(codes: Tensor) -> float:
    """Fraction of latents that never fire on the given window of samples, codes (N, n_q). The window (N samples)
    is the definition: state it next to the number."""
    return (~(codes != 0).any(0)).float().mean().item()


def absorption_scores(codes: Tensor, x: Tensor, W_D: Tensor, W: Tensor, parent: int, child: int) -> dict[str, float]:
    """Ground-truth absorption of one parent-child pair (our definition; no library measures this).

    The parent latent is the latent whose decoder column is best aligned with the parent direction W[:, parent],
    the child latent likewise for the child direction. On the samples where the child is active (so is the parent):

    * ``full``: fraction where the child latent fires and the parent latent is silent (the parent was absorbed);
    * ``parent_in_child``: cosine between the child latent's decoder column and the parent direction (how much of
      the parent the child latent carries; near 0 without absorption, large with it);
    * ``partial``: fraction where both fire but the parent latent's activation is below half its median on
      parent-only-through-other-children samples (a weakened parent).

    Args:
        codes: (N, n_q) latent activations. x: (N, n) ground-truth codes. W_D: (d, n_q). W: (d, n) directions.
    """
    D = W_D / W_D.norm(dim=0, keepdim=True).clamp_min(1e-12)
    Wn = W / W.norm(dim=0, keepdim=True)
    i_p = int((D.T @ Wn[:, parent]).argmax())
    i_c = int((D.T @ Wn[:, child]).argmax())
    on = x[:, child] > 0
    if not bool(on.any()):
        raise ValueError(f"child {child} is never active in these samples")
    fires_p, fires_c = codes[on, i_p] > 0, codes[on, i_c] > 0
    others = (x[:, parent] > 0) & ~on
    ref = codes[others, i_p].median() if bool(others.any()) else codes[on, i_p].max()
    weak = fires_p & (codes[on, i_p] < 0.5 * ref)
    return {"parent_latent": i_p, "child_latent": i_c, "full": (fires_c & ~fires_p).float().mean().item(),
            "partial": (fires_c & weak).float().mean().item(),
            "parent_in_child": float(D[:, i_c] @ Wn[:, parent]) if i_c != i_p else 1.0}
