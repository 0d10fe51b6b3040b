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
