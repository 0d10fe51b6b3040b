"""Recovery metrics against ground truth: tensors in, numbers out.

The paper's metrics use the ENCODER rows as learned features (many-to-one matching allowed):
s_i = max_j |cos(learned_j, w_p^i)|, M_GT(tau) = mean_i 1[s_i > tau], M_IP = mean_i s_i.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _learned_rows(truth: Tensor, encoder: Tensor | None, decoder: Tensor | None) -> Tensor:
    """Learned directions as rows (m, d), from exactly one of encoder W_E (n_q, d) or decoder W_D (d, n_q)."""
    if (encoder is None) == (decoder is None):
        raise TypeError("pass exactly one of encoder=W_E (n_q, n_p) or decoder=W_D (n_r, n_q)")
    if truth.ndim != 2:
        raise ValueError(f"truth must be (d, n): one ground-truth direction per column; got {tuple(truth.shape)}")
    learned = encoder if encoder is not None else decoder.T
    name, want = ("encoder W_E", "(n_q, d)") if encoder is not None else ("decoder W_D", "(d, n_q)")
    if learned.ndim != 2 or learned.shape[1] != truth.shape[0]:
        raise ValueError(f"{name} must be {want} with d = {truth.shape[0]} (the rows of truth); got "
                         f"{tuple((encoder if encoder is not None else decoder).shape)}")
    return learned


def best_cosines(truth: Tensor, *, encoder: Tensor | None = None, decoder: Tensor | None = None) -> Tensor:
    """s_i = max_j |cos(learned_j, truth_i)| for every ground-truth column i.

    Every matrix is in the paper's orientation, named so that it cannot be passed the wrong way round:
    truth (d, n) has one direction per column (W_p or W_r); the learned directions are the rows of
    ``encoder`` = W_E (n_q, n_p) or the columns of ``decoder`` = W_D (n_r, n_q). Returns (n,).
    """
    learned = _learned_rows(truth, encoder, decoder)
    L = learned / learned.norm(dim=1, keepdim=True).clamp_min(1e-12)
    T = truth / truth.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return (L @ T.to(L)).abs().max(dim=0).values


def gt_recovery(truth: Tensor, *, encoder: Tensor | None = None, decoder: Tensor | None = None,
                tau: float = 0.95) -> float:
    """M_GT(tau): fraction of ground-truth features with a learned direction of |cos| > tau (see best_cosines)."""
    return (best_cosines(truth, encoder=encoder, decoder=decoder) > tau).float().mean().item()


def max_inner_product(truth: Tensor, *, encoder: Tensor | None = None, decoder: Tensor | None = None) -> float:
    """M_IP: mean over ground-truth features of the best |cos| with a learned direction (see best_cosines)."""
    return best_cosines(truth, encoder=encoder, decoder=decoder).mean().item()


def recovery(W_E: Tensor, W_D: Tensor, W_p: Tensor, W_r: Tensor, tau: float = 0.95) -> dict[str, float]:
    """M_GT(tau) and M_IP of one dictionary over its encoder rows (W_E (n_q, n_p) against W_p (n_p, n)) and over its
    decoder columns (W_D (n_r, n_q) against W_r (n_r, n)); keys M_GT_enc, M_IP_enc, M_GT_dec, M_IP_dec."""
    s_enc, s_dec = best_cosines(W_p, encoder=W_E), best_cosines(W_r, decoder=W_D)
    return {"M_GT_enc": (s_enc > tau).float().mean().item(), "M_IP_enc": s_enc.mean().item(),
            "M_GT_dec": (s_dec > tau).float().mean().item(), "M_IP_dec": s_dec.mean().item()}


def hungarian_mcc(W_D: Tensor, truth: Tensor) -> float:
    """SAELens-style MCC: one-to-one matching (scipy's Hungarian solver) of decoder columns W_D (d, n_q) to
    ground-truth columns (d, n) on |cos|; the mean |cos| over the min(n_q, n) matched pairs."""
    from scipy.optimize import linear_sum_assignment

    if W_D.ndim != 2 or truth.ndim != 2 or W_D.shape[0] != truth.shape[0]:
        raise ValueError(f"W_D (d, n_q) and truth (d, n) must share their first size d; got {tuple(W_D.shape)} "
                         f"and {tuple(truth.shape)}")
    D = W_D / W_D.norm(dim=0, keepdim=True).clamp_min(1e-12)
    T = truth / truth.norm(dim=0, keepdim=True).clamp_min(1e-12)
    C = (D.T @ T).abs().double().cpu().numpy()          # (n_q, n)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].mean())


def detection_f1(codes: Tensor, x: Tensor, W_D: Tensor, truth: Tensor) -> dict[str, float]:
    """SynthSAEBench's classification metrics (as SAELens's ``sae_lens.synthetic`` defines them): each latent
    is a detector of its best-matching feature (largest |cos| of its decoder column W_D (d, n_q) with the columns
    of ``truth`` (d, n)); over the samples, it fires when its code is > 0, the feature when ``x`` > 0. Per latent:
    precision TP / (TP + FP), recall TP / (TP + FN), F1 their harmonic mean (each 0 where undefined) and accuracy;
    returned as means over the latents. codes (N, n_q), x (N, n) ground-truth codes of the same samples."""
    D = W_D / W_D.norm(dim=0, keepdim=True).clamp_min(1e-12)
    T = truth / truth.norm(dim=0, keepdim=True).clamp_min(1e-12)
    best = (D.T @ T.to(D)).abs().argmax(1)                        # (n_q,)
    fires, truth_fires = codes > 0, x[:, best] > 0
    tp, fp = (fires & truth_fires).double().sum(0), (fires & ~truth_fires).double().sum(0)
    fn, tn = (~fires & truth_fires).double().sum(0), (~fires & ~truth_fires).double().sum(0)
    zero = torch.zeros_like(tp)
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), zero)
    recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), zero)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-30), zero)
    accuracy = (tp + tn) / (tp + fp + fn + tn).clamp_min(1)
    return {"precision": precision.mean().item(), "recall": recall.mean().item(), "F1": f1.mean().item(),
            "accuracy": accuracy.mean().item()}


def uniqueness(W_D: Tensor, truth: Tensor) -> float:
    """SynthSAEBench's uniqueness: the number of distinct best-matching features (largest |cos| of each decoder
    column W_D (d, n_q) with ``truth`` (d, n)) over the number of latents; 1 when no two latents share one."""
    D = W_D / W_D.norm(dim=0, keepdim=True).clamp_min(1e-12)
    T = truth / truth.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return len((D.T @ T.to(D)).abs().argmax(1).unique()) / W_D.shape[1]


def l0(codes: Tensor) -> float:
    """Mean number of non-zero latents per sample; codes (B, n_q)."""
    return (codes != 0).float().sum(-1).mean().item()


def explained_variance(x_r: Tensor, x_hat: Tensor) -> float:
    """1 - E||x_r - x_hat||^2 / E||x_r - mean(x_r)||^2 (the mean IS subtracted; SAELens fixed this in 6.45.1)."""
    total = (x_r - x_r.mean(0)).pow(2).sum(-1).mean()
    return (1 - (x_r - x_hat).pow(2).sum(-1).mean() / total).item()


def sample_dead_fraction(codes: Tensor) -> float:
    """Fraction of latents that never fire on the given window of samples, codes (N, n_q). The window (N samples)
    is the definition: state it next to the number."""
    return (~(codes != 0).any(0)).float().mean().item()


CARRY = 0.3   # ours: least cosine for a decoder column to carry a direction (absorption scores)
QUIET = 0.25  # ours: largest activation ratio, parent alone over parent with child, of a child's own latent
ABSORBED = 0.5       # ours: a pair is absorbed when its full score exceeds this share
CONTROL_SHARE = 0.1  # ours: a control "shows no absorption" below this share of its hierarchy's


def pair_latents(W_D: Tensor, W: Tensor, parent: int, child: int, alone_ratio: Tensor, carry: float = CARRY,
                 quiet: float = QUIET) -> tuple[int, int]:
    """The (parent latent, child latent) of one pair (our definition), two distinct latents or -1 for none.

    The child latent i_c is the child's OWN latent: among latents whose decoder column has cos(d_i, w_c) >=
    ``carry`` and whose mean activation on samples of the parent without this child is at most ``quiet`` times
    its mean activation on samples of both (``alone_ratio`` (n_q,), that ratio), the one with the largest
    cos(d_i, w_c); -1 when there is none (the child was not learned). A latent that fires on parent-only samples
    is the parent's, however much of the child it carries. The parent latent i_P maximises cos(d_i, w_P) over the other latents; -1 when that cosine is
    below ``carry``. W_D: (d, n_q); W: (d, n) directions as columns.
    """
    D = W_D / W_D.norm(dim=0, keepdim=True).clamp_min(1e-12)
    w_p, w_c = (W[:, j] / W[:, j].norm() for j in (parent, child))   # only the pair's columns (n may be large)
    cp, cc = D.T @ w_p, D.T @ w_c                                    # (n_q,) each
    own = (cc >= carry) & (alone_ratio <= quiet)
    i_c = int(cc.masked_fill(~own, float("-inf")).argmax()) if bool(own.any()) else -1
    if i_c >= 0:
        cp = cp.clone()
        cp[i_c] = float("-inf")
    i_p = int(cp.argmax())
    return (i_p if float(cp[i_p]) >= carry else -1), i_c


def absorption_scores(codes: Tensor, x: Tensor, W_D: Tensor, W: Tensor, parent: int, child: int,
                      carry: float = CARRY, quiet: float = QUIET) -> dict[str, float]:
    """Ground-truth absorption of one parent-child pair (our definition; no library measures this).

    ``codes`` (N, n_q) and ground-truth codes ``x`` (N, n) must hold samples where the parent is active with the
    child ("both") and without it ("alone"). The latents are :func:`pair_latents`. On the "both" samples:

    * ``full``: fraction where the child latent fires, the parent latent is silent (or the parent has no latent)
      and the child latent carries the parent, ``parent_in_child`` = cos(d_{i_c}, w_P) >= ``carry``: the parent's
      direction is reconstructed by the child's own latent, the parent was absorbed. A parent latent silenced for
      another reason (TopK crowding it out) is not absorption, nor is a latent that fires on parent-only samples;
    * ``not_learned``: 1 when the child has no latent of its own (then ``full`` and ``partial`` are 0);
    * ``silent``: fraction where the parent latent is silent, for any reason;
    * ``partial``: fraction where the child latent fires and carries the parent, and the parent latent fires but
      below half its median on the "alone" samples (a weakened parent);
    * ``child_cos`` = cos(d_{i_c}, w_c); ``child_alone``: the child latent's ``alone_ratio``.

    Args:
        W_D: (d, n_q). W: (d, n) directions. carry: the least cosine for a decoder column to carry a direction
            (well above the interference M of the worlds here, below the 1/sqrt 2 of an exactly absorbed child).
        quiet: the largest ``alone_ratio`` of a child's own latent (ours: interference M <= 0.1 gives a faithful
            child latent about M; a latent reading w_P + w_c equally gives 1/2).
    """
    D = W_D / W_D.norm(dim=0, keepdim=True).clamp_min(1e-12)
    w_p, w_c = (W[:, j] / W[:, j].norm() for j in (parent, child))
    both, alone = (x[:, child] > 0) & (x[:, parent] > 0), (x[:, child] == 0) & (x[:, parent] > 0)
    if not bool(both.any()) or not bool(alone.any()):
        raise ValueError(f"absorption of child {child} into parent {parent} needs samples with the parent active "
                         f"both with and without the child; got {int(both.sum())} and {int(alone.sum())}")
    on_both = codes[both].clamp_min(0).mean(0)
    ratio = torch.where(on_both > 0, codes[alone].clamp_min(0).mean(0) / on_both.clamp_min(1e-30), float("inf"))
    i_p, i_c = pair_latents(W_D, W, parent, child, ratio, carry, quiet)
    fires_p = codes[both, i_p] > 0 if i_p >= 0 else torch.zeros(int(both.sum()), dtype=torch.bool)
    out = {"parent_latent": i_p, "child_latent": i_c, "silent": (~fires_p).float().mean().item(),
           "not_learned": float(i_c < 0), "full": 0.0, "partial": 0.0, "parent_in_child": float("nan"),
           "child_cos": float("nan"), "child_alone": float("nan")}
    if i_c < 0:
        return out
    fires_c = codes[both, i_c] > 0
    weak = fires_p & (codes[both, i_p] < 0.5 * codes[alone, i_p].median()) if i_p >= 0 else fires_p
    pic = float(D[:, i_c] @ w_p)
    carries = pic >= carry
    return out | {"full": (fires_c & ~fires_p).float().mean().item() if carries else 0.0,
                  "partial": (fires_c & weak).float().mean().item() if carries else 0.0, "parent_in_child": pic,
                  "child_cos": float(D[:, i_c] @ w_c), "child_alone": float(ratio[i_c])}
