"""Audit any dictionary: recovery, latent census, a partial-minimum test of L~ and absorption, in one call.

``audit(d, truth=..., data=..., pairs=...)`` takes a :class:`~sdl_paper.model.dictionary.Dictionary` (trained
here, loaded from a file, or imported from SAELens) and whatever is known about its data:

- ``truth``: a GroundTruth (directions, feature weights M_d and a sampler), a SynthSAEBench-style
  :class:`~sdl_paper.data.synthsaebench.SynthWorld` (directions, a sampler and its forest), or known directions
  only (W_p (n_p, n), W_r (n_r, n) or one matrix for both: anchors, class means);
- ``data``: samples to measure codes on (any source; default: the GroundTruth when given);
- ``pairs``: (parent, child) feature indices for absorption scores, or ``"edges"``: every edge of the ground
  truth's hierarchy, summarised per edge (``absorption_by_edge``: the distribution of the absorbed share and the
  worst edges with the latent that took the child). Needs a GroundTruth or a SynthWorld, whose codes say which
  features are active.

Each part that cannot be computed from what was given says why instead of guessing; L~ and its partial-minimum
test are the paper's, defined for bias-free dictionaries only, so they are refused for a dictionary with biases.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..data.arrays import as_source, check_directions
from ..data.ground_truth import GroundTruth
from ..data.synthsaebench import SynthSource, SynthWorld
from ..theory import metrics
from ..theory.regions import pattern, pattern_counts
from .dictionary import Dictionary, with_decoder


def _directions(truth, n_p: int, n_r: int) -> tuple[Tensor, Tensor] | None:
    """Known directions from a GroundTruth, a pair (W_p, W_r) or one matrix for both, shapes checked."""
    if isinstance(truth, GroundTruth):
        truth = (truth.W_p, truth.W_r)
    elif isinstance(truth, SynthWorld):
        truth = (truth.W_p, truth.W_p)
    return check_directions(truth, n_p, n_r)


def _truth_sample(truth, n: int, seed: int) -> tuple[Tensor, Tensor] | None:
    """(x (n, n_features), x_p (n, n_p)) drawn from a GroundTruth or a SynthWorld; None for directions only."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(truth, GroundTruth):
        return truth.sample(n, g)[:2]
    return truth.sample(n, g) if isinstance(truth, SynthWorld) else None


def reconstructs_its_input(d: Dictionary) -> bool | None:
    """True for an SAE (the target is the input), False for a transcoder or another map to a different target,
    None when the dictionary does not say (an imported file)."""
    if d.sizes["n_r"] != d.sizes["n_p"]:
        return False
    source = d.meta.get("source") if isinstance(d.meta, dict) else None
    return source.get("autoencoder") if isinstance(source, dict) else None


@torch.no_grad()
def audit(d: Dictionary, truth=None, data=None, pairs: list[tuple[int, int]] = (), k: int | None = None,
          n_samples: int = 8192, seed: int = 0, tau: float = 0.95, targets=None, model: int | None = None) -> dict:
    """A report (dict of plain numbers and strings) on model ``model`` (default 0) of ``d``; see the module
    docstring. ``targets``: the activations the dictionary reconstructs when they are not ``data`` itself (a
    transcoder's MLP outputs, row by row with ``data``): the explained variance is then measured against them,
    and a transcoder audited on data without targets is refused. ``k``: the old name of ``model`` (deprecated)."""
    if k is not None:
        import warnings
        warnings.warn("audit(k=...) is renamed audit(model=...) (k is TopK's number of active latents); k= will "
                      "be removed in the next release", DeprecationWarning, stacklevel=2)
        model = k if model is None else model
    k = 0 if model is None else model
    if data is not None and targets is None and reconstructs_its_input(d) is False:
        raise ValueError("this dictionary reconstructs a target other than its input (a transcoder: n_p="
                         f"{d.sizes['n_p']}, n_r={d.sizes['n_r']}); pass targets= (its outputs, row by row with "
                         "data), or the explained variance would compare it with its input")
    P = with_decoder(d.model(k))
    W_E, W_D = P["W_E"][0].float(), P["W_D"][0].float()
    b_E = P["b_E"][0].float() if "b_E" in P else None
    has_bias = "b_E" in P and bool(P["b_E"].any() or P["b_D"].any())
    sizes = d.sizes
    report: dict = {"method": d.cfg.method, "model": k, **{s: sizes[s] for s in ("n_p", "n_q", "n_r")},
                    "biases": has_bias}
    truth_codes = None                              # (x, codes) of one ground-truth sample, drawn once
    if (drawn := _truth_sample(truth, n_samples, seed + 1)) is not None:
        truth_codes = drawn[0].float(), d.encode(drawn[1].float(), k)
    dirs = _directions(truth, sizes["n_p"], sizes["n_r"])
    if dirs is not None:
        W_p, W_r = dirs
        report |= metrics.recovery(W_E, W_D, W_p, W_r, tau) | {"MCC_dec": metrics.hungarian_mcc(W_D, W_r)}
        sigma = d.to_sdl(k).sigma
        single = W_p.T[None] if not getattr(sigma, "batch_coupled", False) else None
        F = pattern(W_E, sigma, W_p, b_E) if single is not None else \
            torch.stack([pattern(W_E, sigma, W_p[:, [j]], b_E)[:, 0] for j in range(W_p.shape[1])], 1)
        report |= pattern_counts(F) | {"uniqueness": metrics.uniqueness(W_D, W_r)}
        if truth_codes is not None:                 # SynthSAEBench's detection metrics need the true codes
            det = metrics.detection_f1(truth_codes[1], truth_codes[0], W_D, W_r)
            report |= {f"detection_{name}": value for name, value in det.items()}
    else:
        report["recovery"] = "needs truth (directions)"
    source = (as_source(data, targets) if data is not None else as_source(truth) if isinstance(truth, GroundTruth)
              else SynthSource(truth) if isinstance(truth, SynthWorld) else None)
    if source is not None:
        x_p, x_r = source.pool(n_samples, torch.Generator().manual_seed(seed))
        codes = d.encode(x_p, k)
        report |= {"samples": n_samples, "L0": metrics.l0(codes),
                   "sample_dead_fraction": metrics.sample_dead_fraction(codes),
                   "explained_variance": metrics.explained_variance(x_r, d.decode(codes, k)),
                   "explained_variance_of": "the input" if source.autoencoder else "the targets",
                   "log10_feature_density": _density(codes)}
    else:
        report["codes"] = "needs data (or a GroundTruth)"
    report["partial_minimum"] = _partial_minimum(d, k, truth, has_bias)
    return report | _absorption(truth, truth_codes, W_D, None if dirs is None else dirs[1], pairs)


@torch.no_grad()
def edge_absorption(d: Dictionary, truth, models=None, n_samples: int = 8192, seed: int = 0,
                    pairs="edges") -> list[dict]:
    """Only the absorption part of :func:`audit` (the same draw), without the rest of the report, for each of
    ``models`` (indices; default every model of ``d``) from one draw: a list of ``{"absorption": rows,
    "absorption_by_edge": summary}``. ``truth``: a SynthWorld or a GroundTruth; ``pairs``: (parent, child)
    indices, or ``"edges"`` for every edge of its hierarchy."""
    sizes = d.sizes
    dirs, drawn = _directions(truth, sizes["n_p"], sizes["n_r"]), _truth_sample(truth, n_samples, seed + 1)
    if drawn is None:
        raise ValueError("edge_absorption needs a SynthWorld or a GroundTruth (its codes say when a parent and its "
                         f"child are both active); got {type(truth).__name__}")
    x, x_p = drawn[0].float(), drawn[1].float()
    models = range(sizes["K"]) if models is None else models
    return [_absorption(truth, (x, d.encode(x_p, k)), with_decoder(d.model(k))["W_D"][0].float(), dirs[1], pairs)
            for k in models]


def _hierarchy_edges(truth) -> list[tuple[int, int]]:
    """The parent-child edges of a SynthWorld, or of a GroundTruth whose coefficients know their hierarchy."""
    if isinstance(truth, SynthWorld):
        return truth.edges()
    edges = getattr(getattr(truth, "coefficients", None), "edges", None)
    if not isinstance(truth, GroundTruth) or edges is None:
        raise ValueError("pairs='edges' needs a SynthWorld or a GroundTruth whose coefficients have a hierarchy "
                         "(e.g. sdl_paper.theory.absorption.Tree); or pass pairs as (parent, child) indices")
    return edges()


def edge_summary(rows: list[dict], worst: int = 5) -> dict:
    """Per-edge absorption summarised: how many edges were scored, the distribution of the absorbed share
    ``full`` (mean, median, 90th percentile, max), how many children have no latent of their own, and the
    ``worst`` edges by ``full`` with the latent that took the child (``taken_by``, the child's own latent that
    carries the parent) and the parent's latent."""
    scored = [r for r in rows if "full" in r]
    full = torch.tensor([r["full"] for r in scored], dtype=torch.float64)
    dist = ({"mean": float(full.mean()), "median": float(full.median()), "p90": float(full.quantile(0.9)),
             "max": float(full.max())} if len(scored) else {})
    top = sorted(scored, key=lambda r: -r["full"])[:worst]
    return {"edges": len(rows), "scored": len(scored), "full": dist,
            "not_learned": int(sum(r["not_learned"] for r in scored)),
            "worst": [{"parent": r["parent"], "child": r["child"], "full": r["full"], "partial": r["partial"],
                       "taken_by": r["child_latent"], "parent_latent": r["parent_latent"]} for r in top]}


def _density(codes: Tensor, bins: int = 20) -> dict:
    """The feature-density histogram SAELens users know: log10 of each latent's firing frequency on the samples
    (latents that never fire counted apart), binned between -6 and 0."""
    freq = (codes != 0).float().mean(0)
    alive = freq[freq > 0]
    counts = torch.histc(alive.log10(), bins=bins, min=-6.0, max=0.0) if alive.numel() else torch.zeros(bins)
    return {"edges": torch.linspace(-6, 0, bins + 1).tolist(), "counts": counts.int().tolist(),
            "never_fired": int((freq == 0).sum())}


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


def _absorption(truth, truth_codes, W_D: Tensor, W_r: Tensor | None, pairs) -> dict:
    """``absorption``: the corrected score of each (parent, child) pair, or of every edge (``pairs="edges"``),
    on the ground-truth sample ``truth_codes`` = (x, codes); with ``absorption_by_edge`` (:func:`edge_summary`)."""
    if isinstance(pairs, str):
        if pairs != "edges":
            raise ValueError(f"pairs={pairs!r}; allowed: a list of (parent, child) indices or 'edges'")
        pairs = _hierarchy_edges(truth)
    if not pairs:
        return {"absorption": "no pairs given"}
    if truth_codes is None:
        return {"absorption": "needs a GroundTruth or a SynthWorld (its codes say when a parent and its child are "
                              "both active)"}
    x, codes = truth_codes
    rows = []
    for p, c in pairs:
        try:
            rows.append({"parent": p, "child": c, **metrics.absorption_scores(codes, x, W_D, W_r, p, c)})
        except ValueError as e:                      # a rare child: no samples of it on this draw
            rows.append({"parent": p, "child": c, "unscored": str(e)})
    return {"absorption": rows, "absorption_by_edge": edge_summary(rows)}
