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

import pandas as pd
import torch

from ..data import ground_truth
from ..theory import instantiations, metrics
from ..model import Config, decode, encode, fixed_views, with_decoder
from ..training import State, to_device, train
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

METRICS = ("M_GT_enc", "M_IP_enc", "M_GT_dec", "M_IP_dec", "MCC", "L0", "EV", "dead")


def world(n_p: int, n: int, S: float, M: float, seed: int = 0) -> ground_truth.World:
    """The bench's generator (section C) with two layers, so that transcoders and crosscoders have a target."""
    return ground_truth.make_world(n_p, n, S, M, n_layers=2, seed=seed)


def row_config(row: str, practice: str, **overrides) -> Config:
    """The Config of Table 1 row ``row`` under ``practice`` (``overrides`` replace fields, e.g. k, steps, l1)."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; rows: {', '.join(ROWS)}")
    inst, theory_method, standard_method = ROWS[row]
    if practice == "theory":
        return Config(method=theory_method, **overrides)
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


@torch.no_grad()
def evaluate(state: State, gt, cfg: Config, features: torch.Tensor | None = None, tau: float = 0.95,
             n_eval: int = 4096, seed: int = 12345) -> list[dict]:
    """Per model: the bench's metrics over ground-truth ``features`` (default all) on a seeded evaluation set."""
    return BenchMetrics(gt, features, tau, n_eval, seed)(state.params, None, cfg)


class BenchMetrics:
    """The bench's metrics of every model on one seeded evaluation set, drawn once: encoder-row and decoder-column
    M_GT(tau) and M_IP over ground-truth ``features`` (default all), MCC of the decoder, L0, explained variance and
    the sample-dead fraction. Called as ``(params, source, cfg)``, it is a measure for the training loop's
    :class:`~sdl_paper.training.callbacks.Tracking` callback, so a run records these as curves."""

    def __init__(self, gt, features: torch.Tensor | None = None, tau: float = 0.95, n_eval: int = 4096,
                 seed: int = 12345):
        feats = torch.arange(gt.n) if features is None else features
        self.gt, self.W_p, self.W_r, self.tau = gt, gt.W_p[:, feats], gt.W_r[:, feats], tau
        self.n_eval, self.seed, self.views = n_eval, seed, None

    @torch.no_grad()
    def __call__(self, params: dict[str, torch.Tensor], source, cfg: Config) -> list[dict]:
        P = with_decoder(params)
        K = P["W_E"].shape[0]
        if self.views is None or self.views[0].shape[0] != K or self.views[0].device != P["W_E"].device:
            self.views = fixed_views(self.gt, K, self.n_eval, self.seed, P["W_E"].device)[1:]
        x_p, x_r = self.views
        _, a = encode(params, x_p, cfg)
        x_hat = decode(P, a, cfg)
        out = []
        for k in range(K):
            # cosines only: standard practice's norm rescaling (fold_standard) changes no row's direction
            W_E, W_D = P["W_E"][k].cpu(), P["W_D"][k].cpu()
            r = metrics.recovery(W_E, W_D, self.W_p, self.W_r, self.tau)
            out.append(r | {"MCC": metrics.hungarian_mcc(W_D, self.W_r), "L0": metrics.l0(a[k]),
                            "EV": metrics.explained_variance(x_r[k], x_hat[k]),
                            "dead": metrics.sample_dead_fraction(a[k])})
        return out


def run_row(wld: ground_truth.World, row: str, practice: str, n_q: int, seeds: list[int], sweep: tuple = (),
            anchors: int = 0, anchor_seed: int = 0, tau: float = 0.95, device: str = "cpu", **overrides):
    """Train one row (all ``seeds``, and all values of ``sweep = (field, values)``, as one batched run).

    Returns (frame, state, cfg): one frame row per model with the metrics of :func:`evaluate` (over the
    non-anchored features when ``anchors`` > 0) and its seed, practice, row and swept value.
    """
    gt = instantiations.get(ROWS[row][0]).view(wld)
    field, values = sweep if sweep else (None, [None])
    if field is not None:
        overrides[field] = tuple(v for v in values for _ in seeds)
    if anchors:
        overrides |= {"anchors": anchors}
    cfg = row_config(row, practice, tau=tau, **overrides)
    anchored, evaluated = split_anchors(gt.n, anchors, anchor_seed)
    A = anchors_for(gt, anchored) if anchors else None
    all_seeds = [s for _ in values for s in seeds]
    state = train(gt, cfg, n_q, all_seeds, anchors=A, progress=False, desc=row, device=device)
    to_device(state, "cpu")
    rows = evaluate(state, gt, cfg, evaluated if anchors else None, tau)
    meta = [{"row": row, "practice": practice, "seed": s, "anchors": anchors, "value": v}
            for v in values for s in seeds]
    return pd.DataFrame([m | r for m, r in zip(meta, rows)]), state, cfg


def with_without(wld: ground_truth.World, row: str, practice: str, n_q: int, seeds: list[int], anchors: int,
                 coef: float, **kw) -> tuple[pd.DataFrame, State]:
    """One batched run of ``row`` on the same seeds without (lambda_anchor = 0) and with anchoring (``coef``),
    ``anchors`` anchored features: the frame of :func:`run_row` with a bool column ``anchored``, and the state
    (2 len(seeds) models, those without anchoring first). ``kw`` goes to :func:`run_row`."""
    if coef <= 0:
        raise ValueError(f"coef={coef} must be > 0: the comparison arm is lambda_anchor = 0")
    f, st, _ = run_row(wld, row, practice, n_q, seeds, sweep=("anchor_coef", [0.0, coef]), anchors=anchors, **kw)
    return f.assign(anchored=f["value"] > 0), st


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


def summary(frame: pd.DataFrame, by: list[str], cols=METRICS) -> pd.DataFrame:
    """Mean and standard error over seeds of ``cols`` for each group of ``by`` (columns ``<metric>``,
    ``<metric>_se``; the standard error is NaN for a group of one seed, where it is undefined)."""
    g = frame.groupby(by, sort=False, dropna=False)[list(cols)]
    return g.mean().join(g.sem().add_suffix("_se")).reset_index()


def summary_text(frame: pd.DataFrame, by: list[str], cols=METRICS, fmt: str = ".3f") -> pd.DataFrame:
    """:func:`summary` for the page: indexed by ``by``, one ``mean ± se`` text column per metric (half the
    columns of the numbers, so that a table fits the book's column)."""
    s = summary(frame, by, cols)
    return s[by].assign(**{c: [pm(m, e, fmt) for m, e in zip(s[c], s[f"{c}_se"])] for c in cols}).set_index(by)


def pm(mean: float, se: float, fmt: str = ".3f") -> str:
    """``mean ± se`` as text; the mean alone, marked "(1 seed)", where the standard error is undefined (NaN)."""
    return f"{mean:{fmt}} (1 seed)" if pd.isna(se) else f"{mean:{fmt}} ± {se:{fmt}}"


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


def run_table(wld: ground_truth.World, n_q: int, seeds: list[int], sweep_seeds: list[int], sweeps: dict,
              practices=("theory", "standard"), track_every: int = 0, device: str = "cpu", rows=tuple(ROWS),
              **common):
    """Every row of ``rows`` under every practice: fixed rows with ``seeds`` (tracked every ``track_every``
    steps), swept rows over ``sweeps[row]`` (values of their coefficient, :data:`SWEPT`) with ``sweep_seeds``.
    Returns (frame of :func:`run_row` rows, {(row, practice): (state, cfg)})."""
    from ..training.progress import bar

    frames, states = [], {}
    jobs = [(r, p) for p in practices for r in rows]
    for row, practice in bar(jobs, desc="Table 1 rows"):
        if row in SWEPT:
            f, st, cfg = run_row(wld, row, practice, n_q, sweep_seeds, sweep=(SWEPT[row], sweeps[row]),
                                 device=device, **common)
        else:
            f, st, cfg = run_row(wld, row, practice, n_q, seeds, track_every=track_every, device=device, **common)
        frames.append(f)
        states[(row, practice)] = (st, cfg)
    return pd.concat(frames, ignore_index=True), states


def best_setting(frame: pd.DataFrame, by: str = "M_GT_dec") -> pd.DataFrame:
    """For each (row, practice): the swept value with the highest mean ``by`` (fixed rows: their only setting)."""
    s = summary(frame, ["row", "practice", "value"])
    return s.loc[s.groupby(["row", "practice"], sort=False)[by].idxmax()].reset_index(drop=True)


def paper_vs_ours(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 1 side by side: the paper's encoder-row M_GT / M_IP, ours per practice (mean ± standard error
    over seeds) over encoder rows and decoder columns, MCC and L0; swept rows at their best setting."""
    best = best_setting(frame)
    out = []
    for _, r in best.iterrows():
        p_gt, p_ip = PAPER_TABLE1[r["row"]][:2]
        out.append({"row": r["row"], "practice": r["practice"], "paper M_GT enc": f"{p_gt:.1%}",
                    "paper M_IP enc": f"{p_ip:.3f}",
                    "M_GT enc": pm(r["M_GT_enc"], r["M_GT_enc_se"], ".1%"),
                    "M_IP enc": pm(r["M_IP_enc"], r["M_IP_enc_se"]),
                    "M_GT dec": pm(r["M_GT_dec"], r["M_GT_dec_se"], ".1%"),
                    "MCC": f"{r['MCC']:.3f}", "L0": f"{r['L0']:.1f}",
                    "setting": "" if pd.isna(r["value"]) else f"{SWEPT[r['row']]} = {r['value']:g}"})
    return pd.DataFrame(out)


def anchoring_gain(frame: pd.DataFrame, cols=("M_GT_enc", "M_IP_enc", "M_GT_dec", "MCC")):
    """(pairs, gain) of a frame of :func:`with_without` runs: ``pairs`` indexed by (row, seed) with columns
    (metric, anchored), ``gain`` the with-minus-without difference per (row, seed) and metric."""
    pairs = frame.pivot_table(index=["row", "seed"], columns="anchored", values=list(cols))
    return pairs, pairs.xs(True, axis=1, level=1) - pairs.xs(False, axis=1, level=1)
