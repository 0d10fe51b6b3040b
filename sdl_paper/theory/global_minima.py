"""Theorem 3.3 (the ground-truth dictionary's loss) and its hypotheses: W_E is (n_q, n_p), W_D is (n_r, n_q).

Builds on :mod:`sdl_paper.theory.minima` (the ground-truth construction and the paper's bound); minima does not import
this module.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..data.ground_truth import GroundTruth
from .metrics import best_cosines
from .minima import descend, ground_truth_bound, ground_truth_solution
from .regions import tilde_loss


def ground_truth_check(gt: GroundTruth, sigma: nn.Module, n_q: int | None = None) -> dict:
    """Theorem 3.3 for one activation, at the ground truth (W_E*, W_D*) with n_q latents (default n).

    Returns the realized M, L~, the paper's bound n^2 M^2 sum_d M_d, ours (n - 1)^2 M_+^2 sum_d M_d, our
    sufficient condition on Z = W_E* W_p (n_q, n), split in two: ``keeps_own`` (sigma keeps coordinate d of
    column d for every d) and ``drops_negative`` (sigma zeroes every negative coordinate), and the proof's key
    step: ``resid_max`` = max_d ||w_r^d - W_D* sigma(W_E* w_p^d)|| against ``resid_bound`` = (n - 1) M_+.
    """
    W_E, W_D = ground_truth_solution(gt, gt.n if n_q is None else n_q)
    Z = W_E @ gt.W_p.to(W_E)
    A = sigma(Z.T).T
    own = torch.arange(gt.n)
    b = ground_truth_bound(gt)
    return {"M": b["M"], "L~": tilde_loss(W_E, W_D, gt, sigma).item(), "bound (paper)": b["paper"],
            "bound (ours)": b["ours"], "keeps_own": bool((A[own, own] == Z[own, own]).all()),
            "drops_negative": bool((A[Z < 0] == 0).all()),
            "resid_max": (gt.W_r.to(W_E) - W_D @ A).norm(dim=0).max().item(),
            "resid_bound": (gt.n - 1) * max(b["M"], 0.0)}

def interference_profile(W_p: Tensor) -> dict[str, float]:
    """How the worst case of Theorem 3.3 compares with a dictionary W_p (n_p, n): the mean number of positively
    interfering neighbours per feature (the bound assumes n - 1) and their mean cosine (the bound assumes M)."""
    G = W_p.T @ W_p
    G.fill_diagonal_(0.0)
    pos = G > 0
    return {"neighbours": pos.sum(1).double().mean().item(), "mean_cos": G[pos].mean().item(),
            "M": G.max().item()}


def descend_from_ground_truth(gt: GroundTruth, sigma: nn.Module, steps: int = 1500, lr: float = 0.003) -> dict:
    """Full-batch Adam on L~ started at the ground truth (W_E*, W_D*) with n_q = n (float64).

    Returns ``L~ truth`` (the start), ``L~ end`` (the loss of the returned end point, not the best seen),
    ``ratio`` = end / truth and ``cos end`` = the mean best encoder cosine of the end point with the w_p^d.
    An end loss below the start shows that the ground truth is not a global minimum of L~.
    """
    W_E, W_D = (W.double() for W in ground_truth_solution(gt, gt.n))
    start = tilde_loss(W_E, W_D, gt, sigma).item()
    E, D, _ = descend(W_E, W_D, gt, sigma, steps=steps, lr=lr)
    end = tilde_loss(E, D, gt, sigma).item()
    return {"L~ truth": start, "L~ end": end, "ratio": end / start if start > 0 else float("nan"),
            "cos end": best_cosines(gt.W_p.double(), encoder=E).mean().item()}


def local_slopes(x, y) -> np.ndarray:
    """Slopes d log y / d log x between consecutive points of a curve (len(x) - 1 values)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return np.diff(np.log(y)) / np.diff(np.log(x))
