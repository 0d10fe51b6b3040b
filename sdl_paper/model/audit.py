"""Audit any dictionary: recovery, latent census, a partial-minimum test of L~ and absorption, in one call.

``audit(d, truth=..., data=..., pairs=...)`` takes a :class:`~sdl_paper.model.dictionary.Dictionary` (trained
here, loaded from a file, or imported from SAELens) and whatever is known about its data:

- ``truth``: a GroundTruth (directions, feature weights M_d and a sampler), or known directions only
  (W_p (n_p, n), W_r (n_r, n) or one matrix for both: anchors, class means);
- ``data``: samples to measure codes on (any source; default: the GroundTruth when given);
- ``pairs``: (parent, child) feature indices for absorption scores (needs a GroundTruth, whose codes say which
  features are active).

Each part that cannot be computed from what was given says why instead of guessing; L~ and its partial-minimum
test are the paper's, defined for bias-free dictionaries only, so they are refused for a dictionary with biases.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..data.arrays import as_source, check_directions
from ..data.ground_truth import GroundTruth
from ..theory import metrics
from ..theory.regions import pattern, pattern_counts
from .dictionary import Dictionary, with_decoder


def _directions(truth, n_p: int, n_r: int) -> tuple[Tensor, Tensor] | None:
    """Known directions from a GroundTruth, a pair (W_p, W_r) or one matrix for both, shapes checked."""
    if isinstance(truth, GroundTruth):
        truth = (truth.W_p, truth.W_r)
    return check_directions(truth, n_p, n_r)


@torch.no_grad()
def audit(d: Dictionary, truth=None, data=None, pairs: list[tuple[int, int]] = (), k: int = 0,
          n_samples: int = 8192, seed: int = 0, tau: float = 0.95) -> dict:
    """A report (dict of plain numbers and strings) on model ``k`` of ``d``; see the module docstring."""
    P = with_decoder(d.model(k))
    W_E, W_D = P["W_E"][0].float(), P["W_D"][0].float()
    b_E = P["b_E"][0].float() if "b_E" in P else None
    has_bias = "b_E" in P and bool(P["b_E"].any() or P["b_D"].any())
    sizes = d.sizes
    report: dict = {"method": d.cfg.method, "model": k, **{s: sizes[s] for s in ("n_p", "n_q", "n_r")},
                    "biases": has_bias}
    dirs = _directions(truth, sizes["n_p"], sizes["n_r"])
    if dirs is not None:
        W_p, W_r = dirs
        report |= metrics.recovery(W_E, W_D, W_p, W_r, tau) | {"MCC_dec": metrics.hungarian_mcc(W_D, W_r)}
        sigma = d.to_sdl(k).sigma
        single = W_p.T[None] if not getattr(sigma, "batch_coupled", False) else None
        F = pattern(W_E, sigma, W_p, b_E) if single is not None else \
            torch.stack([pattern(W_E, sigma, W_p[:, [j]], b_E)[:, 0] for j in range(W_p.shape[1])], 1)
        report |= pattern_counts(F)
    else:
        report["recovery"] = "needs truth (directions)"
    source = as_source(data) if data is not None else (as_source(truth) if isinstance(truth, GroundTruth)
                                                       else None)
    if source is not None:
        x_p, x_r = source.pool(n_samples, torch.Generator().manual_seed(seed))
        codes = d.encode(x_p, k)
        report |= {"samples": n_samples, "L0": metrics.l0(codes),
                   "sample_dead_fraction": metrics.sample_dead_fraction(codes),
                   "explained_variance": metrics.explained_variance(x_r, d.decode(codes, k))}
    else:
        report["codes"] = "needs data (or a GroundTruth)"
    report["partial_minimum"] = _partial_minimum(d, k, truth, has_bias)
    report["absorption"] = _absorption(d, k, truth, pairs, n_samples, seed) if pairs else "no pairs given"
    return report


def _partial_minimum(d: Dictionary, k: int, truth, has_bias: bool, tol: float = 1e-6):
    """Block gradients of L~ and random probes of both blocks (encoder moves kept inside the region)."""
    if has_bias:
        return "refused: L~ is the paper's bias-free loss; this dictionary has biases"
    if not isinstance(truth, GroundTruth):
        return "needs a GroundTruth (L~ weighs each feature by its M_d)"
    if d.cfg.impl.batch_coupled:
        return "refused: L~ presents features one at a time; BatchTopK couples the samples of a batch"
    from ..theory.minima import partial_minimality

    m = d.to_sdl(k).double()
    gt = GroundTruth(truth.W_p.double(), truth.W_r.double(), truth.coefficients)
    with torch.enable_grad():                      # block gradients of L~
        row = partial_minimality(m.W_E.detach(), m.W_D.detach(), gt, m.sigma, n_dirs=50, scales=(1e-4, 1e-2))
    # None: no random encoder move stayed in the region (a point on its boundary), so the test cannot decide
    row["is_partial_minimum"] = None if row["directions_in_region"] == 0 else bool(
        max(row["grad_E"], row["grad_D"]) < tol and max(row["max_drop_E"], row["max_drop_D"]) <= 1e-12)
    return row


def _absorption(d: Dictionary, k: int, truth, pairs, n_samples: int, seed: int):
    if not isinstance(truth, GroundTruth):
        return "needs a GroundTruth (its codes say when a parent and its child are both active)"
    x, x_p, _ = truth.sample(n_samples, torch.Generator().manual_seed(seed + 1))
    codes = d.encode(x_p.float(), k)
    W_D = with_decoder(d.model(k))["W_D"][0].float()
    return [{"parent": p, "child": c, **metrics.absorption_scores(codes, x.float(), W_D, truth.W_r.float(), p, c)}
            for p, c in pairs]
