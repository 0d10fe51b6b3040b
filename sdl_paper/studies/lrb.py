"""The paper's Linear Representation Bench (LRB, its section C and Table 1) at any size: the seven rows, their
configurations under both training practices, feature anchoring, and one tidy table of ground-truth metrics.

A *row* of Table 1 is a method on an instantiation (ReLU SAE, ..., TopK crosscoder). Under the ``theory``
practice (as the theorems: no biases, unit-norm decoder) the ReLU row trains ``relu`` (ReLU + L1); under the
``standard`` practice (SAELens 6.54.12's defaults, :meth:`~sdl_paper.model.dictionary.Config.standard`) it trains
SAELens's "standard" SAE, ``relu_dec``. Transcoders keep their input under the standard practice (SAELens's
transcoders do not subtract b_D). SAELens has no crosscoder: our standard crosscoder is its SAE practice on the
concatenated layers.

Metrics (per model, :func:`evaluate`): M_GT(tau) and M_IP over encoder rows (the paper's) and over decoder
columns, Hungarian MCC (decoder columns), L0, explained variance and the fraction of latents that never fire, on
one seeded evaluation set; with anchoring, over the non-anchored features only (as the paper evaluates).
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from ..data import ground_truth
from ..theory import instantiations, metrics
from ..model import Config, decode, encode, fixed_views, methods, with_decoder
from ..training import State, to_device, train
from ..training.callbacks import Tracking
from .curves import curve_steps
from .paper import TABLE1 as PAPER_TABLE1

# name: (instantiation, method under "theory", method under "standard")
ROWS = {
    "ReLU SAE": ("SAE", "relu", "relu_dec"),
    "JumpReLU SAE": ("SAE", "jumprelu", "jumprelu"),
    "TopK SAE": ("SAE", "topk", "topk"),
    "BatchTopK SAE": ("SAE", "batchtopk", "batchtopk"),
    "Matryoshka SAE": ("SAE", "matryoshka", "matryoshka"),
    "TopK transcoder": ("transcoder", "topk", "topk"),
    "TopK crosscoder": ("crosscoder", "topk", "topk"),
}
SWEPT = {"ReLU SAE": "l1", "JumpReLU SAE": "l0"}   # rows whose sparsity coefficient sets L0 (swept, not fixed)

ARMS = ("none", "anchored", "random span")   # anchoring arms: lambda = 0, the true directions, the control


def world(n_p: int, n: int, S: float, M: float, seed: int = 0) -> ground_truth.World:
    """The bench's generator (section C) with two layers, so that transcoders and crosscoders have a target."""
    return ground_truth.make_world(n_p, n, S, M, n_layers=2, seed=seed)


def row_config(row: str, practice: str, **overrides) -> Config:
    """The Config of Table 1 row ``row`` under ``practice`` (``overrides`` replace fields, e.g. k, steps, l1)."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; rows: {', '.join(ROWS)}")
    inst, theory_method, standard_method = ROWS[row]
    method = theory_method if practice == "theory" else standard_method
    if not methods.METHODS[method].uses_k:          # one override dict serves every row: k only where it applies
        overrides = {key: v for key, v in overrides.items() if key != "k"}
    if practice == "theory":
        return Config.theory(method=theory_method, **overrides)
    if practice == "standard":
        extra = {"subtract_b_D": False} if inst == "transcoder" else {}
        return Config.standard(standard_method, **(extra | overrides))
    raise ValueError(f"practice={practice!r}; allowed: theory, standard")


def split_anchors(n: int, m: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchored, evaluated) feature indices: a seeded random subset of m of the n features, and the rest."""
    if not 0 <= m < n:
        raise ValueError(f"anchors m={m} must be in [0, n={n})")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:m].sort().values, perm[m:].sort().values


def anchors_for(gt, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The anchoring targets of features ``idx``: A_p (m, n_p) rows and A_r (n_r, m) columns, unit norm."""
    A_p = gt.W_p[:, idx].T
    A_r = gt.W_r[:, idx]
    return {"A_p": (A_p / A_p.norm(dim=1, keepdim=True)).contiguous(),
            "A_r": (A_r / A_r.norm(dim=0, keepdim=True)).contiguous()}


def random_span_anchors(gt, idx: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """The control of anchoring: m random unit directions in the span of the anchored features ``idx`` (the
    same seeded Gaussian mixing G (m, m) of their W_p and W_r columns), shaped as :func:`anchors_for`."""
    G = torch.randn(len(idx), len(idx), generator=torch.Generator().manual_seed(seed + 7919), dtype=gt.W_p.dtype)
    A_p, A_r = (gt.W_p[:, idx] @ G).T, gt.W_r[:, idx] @ G
    return {"A_p": (A_p / A_p.norm(dim=1, keepdim=True)).contiguous(),
            "A_r": (A_r / A_r.norm(dim=0, keepdim=True)).contiguous()}


@torch.no_grad()
def evaluate(state: State, gt, cfg: Config, features: torch.Tensor | None = None, tau: float = 0.95,
             n_eval: int = 4096, seed: int = 12345) -> list[dict]:
    """Per model: the bench's metrics over ground-truth ``features`` (default all) on a seeded evaluation set."""
    return BenchMetrics(gt, features, tau, n_eval, seed)(state.params, None, cfg)


class BenchMetrics:
    """The bench's metrics of every model on one seeded evaluation set, drawn once: encoder-row and decoder-column
    M_GT(tau) and M_IP over ground-truth ``features`` (default all), MCC of the decoder, L0, explained variance
    and the sample-dead fraction. Called as ``(params, source, cfg)``, it is a measure for the training loop's
    :class:`~sdl_paper.training.callbacks.Tracking` callback, so a run records these as curves. A world with its
    own evaluation data overrides :meth:`views`; one with more metrics extends :meth:`model_metrics`."""

    def __init__(self, gt, features: torch.Tensor | None = None, tau: float = 0.95, n_eval: int = 4096,
                 seed: int = 12345):
        feats = torch.arange(gt.n) if features is None else features
        self.gt, self.W_p, self.W_r, self.tau, self.feats = gt, gt.W_p[:, feats], gt.W_r[:, feats], tau, feats
        self.n_eval, self.seed, self._views = n_eval, seed, None

    def views(self, K: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The evaluation set: codes x (n_eval, n) and x_p (K, n_eval, n_p), x_r (K, n_eval, n_r), on ``device``."""
        x, x_p, x_r = fixed_views(self.gt, K, self.n_eval, self.seed, device)
        return x.to(device), x_p, x_r

    @torch.no_grad()
    def __call__(self, params: dict[str, torch.Tensor], source, cfg: Config) -> list[dict]:
        P = with_decoder(params)
        K = P["W_E"].shape[0]
        if self._views is None or self._views[1].shape[0] != K or self._views[1].device != P["W_E"].device:
            x, x_p, x_r = self.views(K, P["W_E"].device)
            self._views = (x[:, self.feats], x_p, x_r)                  # the evaluated features' codes
        x, x_p, x_r = self._views
        _, a = encode(params, x_p, cfg)
        x_hat = decode(P, a, cfg)
        return [self.model_metrics(P["W_E"][k], P["W_D"][k], a[k], x, x_r[k], x_hat[k]) for k in range(K)]

    def model_metrics(self, W_E, W_D, a, x, x_r, x_hat) -> dict:
        """One model's metrics: W_E (n_q, n_p), W_D (n_r, n_q), its codes a (n_eval, n_q), the evaluated
        features' codes x (n_eval, n_eval features), targets x_r and reconstructions x_hat (n_eval, n_r)."""
        # cosines only: standard practice's norm rescaling (fold_standard) changes no row's direction
        W_E, W_D = W_E.cpu(), W_D.cpu()
        return metrics.recovery(W_E, W_D, self.W_p, self.W_r, self.tau) | {
            "MCC": metrics.hungarian_mcc(W_D, self.W_r), "L0": metrics.l0(a),
            "EV": metrics.explained_variance(x_r, x_hat), "dead": metrics.sample_dead_fraction(a)}


def run_row(wld: ground_truth.World, row: str, practice: str, n_q: int, seeds: list[int], sweep: tuple = (),
            anchors: int = 0, anchor_seed: int = 0, tau: float = 0.95, device: str = "cpu", **overrides):
    """Train one row (all ``seeds``, and all values of ``sweep = (field, values)``, as one batched run) and read
    it at the end: :func:`run_curves` recording only the last step, every model anchored when ``anchors`` > 0.

    Returns (frame, state, cfg): one frame row per model with the metrics of :func:`evaluate` (over the
    non-anchored features when ``anchors`` > 0) and its seed, practice, row and swept value.
    """
    coef = overrides.pop("anchor_coef", Config.theory().anchor_coef)
    c, state = run_curves(wld, row, practice, n_q, seeds, sweep, anchors, coef, anchor_seed, ("anchored",), tau,
                          device, 0, **overrides)
    frame = c[c["step"] == c["step"].max()].drop(columns=["step", "arm", "field"]).reset_index(drop=True)
    return frame, state, Config.from_dict(state.config)


def _bench(wld, row: str):
    """(truth: W_p, W_r, n; training data; measure class) of ``row`` on a World (the view of the row's
    instantiation, trained on fresh samples, :class:`BenchMetrics`) or on a bench that brings its own data and
    measure (attributes ``data`` and ``metrics``, e.g. :class:`~sdl_paper.studies.transfer.SynthBench`; SAEs only)."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; rows: {', '.join(ROWS)}")
    if isinstance(wld, ground_truth.World):
        gt = instantiations.get(ROWS[row][0]).view(wld)
        return gt, gt, BenchMetrics
    if ROWS[row][0] != "SAE":
        raise ValueError(f"row {row!r} needs a World with layers; this bench has one space (SAE rows only)")
    return wld, wld.data, wld.metrics


def run_curves(wld: ground_truth.World, row: str, practice: str, n_q: int, seeds: list[int], sweep: tuple = (),
               anchors: int = 0, anchor_coef: float = 0.1, anchor_seed: int = 0, arms=ARMS, tau: float = 0.95,
               device: str = "cpu", points: int = 20, state: State | None = None,
               **overrides) -> tuple[pd.DataFrame, State]:
    """Train one row as one batched run and record every model's curves (:class:`BenchMetrics` at
    :func:`~sdl_paper.studies.curves.curve_steps` with ``points``, or only at the last step for ``points`` = 0;
    over the non-anchored features when ``anchors`` > 0). ``wld``: a World, or a bench that brings its own data
    and measure (:func:`_bench`; e.g. :class:`~sdl_paper.studies.transfer.SynthBench`, SAE rows only); the
    same for :func:`run_row` and :func:`match_l0`.

    Models: every value of ``sweep = (field, values)`` (e.g. ``("lr", [1e-4, 3e-4, 1e-3])``), times, when
    ``anchors`` > 0, the ``arms`` (default the three :data:`ARMS`: none: lambda_anchor = 0; anchored: the true
    directions; random span: :func:`random_span_anchors`, same m and lambda), times ``seeds``; the same seeds in
    every setting and arm.
    ``state``: a run of the same models to continue (e.g. :func:`~sdl_paper.training.state.select` of a shorter
    run's state): its earlier curve points are kept and training goes on up to ``steps``.
    Returns (curves: one row per step and model with columns step, seed, value, arm, row, practice, anchors and
    the metrics; the state).
    """
    gt, data, measure = _bench(wld, row)
    field, values = sweep if sweep else (None, [None])
    if anchors and (not arms or set(arms) - set(ARMS)):
        raise ValueError(f"arms={arms!r}; allowed: a non-empty subset of {ARMS}")
    if anchors and field == "anchor_coef":
        raise ValueError("sweep over anchor_coef with anchors > 0: the arms set lambda_anchor (anchor_coef=); "
                         "run one value per call")
    arms = tuple(arms) if anchors else ("none",)
    meta = [dict(value=v, arm=a, seed=s) for v in values for a in arms for s in seeds]
    if field is not None:
        overrides[field] = tuple(m["value"] for m in meta)
    anchored, evaluated = split_anchors(gt.n, anchors, anchor_seed)
    A = None
    if anchors:
        true, ctrl = anchors_for(gt, anchored), random_span_anchors(gt, anchored, anchor_seed)
        A = {name: torch.stack([(ctrl if m["arm"] == "random span" else true)[name] for m in meta])
             for name in ("A_p", "A_r")}
        overrides |= {"anchors": anchors,
                      "anchor_coef": tuple(0.0 if m["arm"] == "none" else anchor_coef for m in meta)}
    cfg = row_config(row, practice, tau=tau, **overrides)
    track = Tracking(steps=curve_steps(cfg.steps, points) if points else (cfg.steps - 1,),
                     measure=measure(gt, evaluated if anchors else None, tau))
    state = train(data, cfg, n_q, [m["seed"] for m in meta], anchors=A, progress=False, desc=row, device=device,
                  callback=track, state=state)
    to_device(state, "cpu")
    out = [{"step": t["step"], **meta[k], **r} for t in state.tracked for k, r in enumerate(t["models"])]
    return pd.DataFrame(out).assign(row=row, practice=practice, anchors=anchors, field=field), state


def match_l0(wld: ground_truth.World, row: str, practice: str, n_q: int, target: float, values, seed: int = 0,
             **overrides) -> tuple[float, pd.DataFrame]:
    """The coefficient of ``row``'s sparsity penalty (:data:`SWEPT`) among ``values`` whose final L0 is nearest
    ``target`` in log (e.g. the TopK row's k), from one batched run of one seed per value (``overrides`` as in
    :func:`run_row`: steps, lr, ...). Returns (value, frame of the run: value, L0 and the metrics)."""
    if row not in SWEPT:
        raise ValueError(f"row {row!r} has no sparsity coefficient to match; rows with one: {', '.join(SWEPT)}")
    if target <= 0:
        raise ValueError(f"target L0 {target} must be > 0")
    f, _, _ = run_row(wld, row, practice, n_q, [seed], sweep=(SWEPT[row], list(values)), **overrides)
    gap = (f["L0"].clip(lower=1e-3) / target).map(math.log).abs()
    return float(f.loc[gap.idxmin(), "value"]), f


def ablation(name: str, values, make, run) -> tuple[list[pd.DataFrame], list]:
    """``run(make(v))`` (a frame) for each setting v of the ablation ``name``, tagged ``ablation`` and ``setting``;
    the settings whose world the bench cannot generate (``make`` raises InterferenceUnreachable: an M below what
    n unit vectors in n_p dimensions allow) are skipped and returned as the second item."""
    frames, unreachable = [], []
    for v in values:
        try:
            wld = make(v)
        except ground_truth.InterferenceUnreachable:
            unreachable.append(v)
            continue
        frames.append(run(wld).assign(ablation=name, setting=v))
    return frames, unreachable


def pm(mean: float, se: float, fmt: str = ".3f") -> str:
    """``mean ± se`` as text; the mean alone, marked "(1 seed)", where the standard error is undefined (NaN)."""
    return f"{mean:{fmt}} (1 seed)" if pd.isna(se) else f"{mean:{fmt}} ± {se:{fmt}}"


def pm_table(frame: pd.DataFrame, by, cols, fmt: str = ".3f") -> pd.DataFrame:
    """Per group ``by`` (in the frame's order): each of ``cols`` as :func:`pm` text, mean ± standard error over
    the group's rows (one per seed); one column per metric, so a wide table stays narrow."""
    g = frame.groupby(by, sort=False)[list(cols)]
    mean, se = g.mean(), g.sem()
    return pd.DataFrame({c: [pm(m, e, fmt) for m, e in zip(mean[c], se[c])] for c in cols}, index=mean.index)


def tau_curve(state: State, gt, taus, features: torch.Tensor | None = None) -> pd.DataFrame:
    """M_GT(tau) over encoder rows and decoder columns for each model and threshold (the paper's Fig. 6)."""
    P = with_decoder(state.params)
    feats = torch.arange(gt.n) if features is None else features
    rows = []
    for k in range(P["W_E"].shape[0]):
        s_enc = metrics.best_cosines(gt.W_p[:, feats], encoder=P["W_E"][k].cpu())
        s_dec = metrics.best_cosines(gt.W_r[:, feats], decoder=P["W_D"][k].cpu())
        rows += [{"model": k, "tau": float(t), "encoder rows": float((s_enc > t).float().mean()),
                  "decoder columns": float((s_dec > t).float().mean())} for t in taus]
    return pd.DataFrame(rows)


def curve_table(judged: pd.DataFrame, by: list[str], paper_col: int | None = 0,
                names: tuple[str, str] = ("enc", "dec")) -> pd.DataFrame:
    """A :func:`~sdl_paper.studies.curves.judged` table for the page, indexed by ``by``: peak and final of the
    judged metric (default encoder-row M_GT; mean ± standard error over seeds), the step of the peak, the paired
    metric's (default the decoder's) at both steps, the convergence status and, when ``paper_col`` is given, the
    paper's Table 1 entry of the row (0: M_GT, 2: with anchoring). ``names``: the two metrics' column labels."""
    m, p = names
    out = judged[by].assign(**{
        f"peak {m}": [pm(v, e, ".1%") for v, e in zip(judged["peak"], judged["peak_se"])],
        "at step": [f"{s:.0f}" for s in judged["peak_step"]],
        f"{p} at peak": [f"{d:.0%}" for d in judged["paired_at_peak"]],
        f"final {m}": [pm(v, e, ".1%") for v, e in zip(judged["final"], judged["final_se"])],
        f"{p} final": [f"{d:.0%}" for d in judged["paired_final"]],
        "status": judged["status"]})
    if paper_col is not None:
        out["paper"] = [f"{PAPER_TABLE1[r][paper_col]:.1%}" for r in judged["row"]]
    return out.set_index(by)


