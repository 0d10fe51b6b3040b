"""Absorption measured against ground truth in trained SAEs: evaluation sets conditioned on a (parent, child) pair,
the per-pair table the experiment chapter analyses, and parameter snapshots during training.

Worlds are :class:`sdl_paper.theory.absorption.TreeCoefficients` hierarchies (or their control,
:class:`sdl_paper.theory.absorption.IndependentTree`); scores are :func:`sdl_paper.theory.metrics.absorption_scores`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..data.ground_truth import GroundTruth
from ..model import Config, encode, with_decoder
from ..theory.absorption import Tree
from ..training import State, to_device, train
from ..theory.metrics import ABSORBED, CARRY, absorption_scores


def tree_world(dirs: Tensor, n_parents: int, n_children: int, n_free: int, p_parent: float, rho: float,
               child_decay: float, c_min: float, beta: float, control: bool = False) -> GroundTruth:
    """The experiment chapter's world: a :class:`~sdl_paper.theory.absorption.Tree` law (free features as likely
    as a parent; ``control``: children independent of their parent) over directions ``dirs`` (n_p, n), read and
    reconstructed in the same space (an SAE)."""
    tc = Tree(n_parents, n_children, n_free, p_parent=p_parent, rho=rho, child_decay=child_decay, p_free=p_parent,
              c_min=c_min, beta=beta, independent=control)
    if dirs.shape[1] != tc.n:
        raise ValueError(f"dirs has {dirs.shape[1]} directions; this tree has {tc.n} features")
    return GroundTruth(dirs, dirs, tc)


@torch.no_grad()
def eval_codes(params: dict[str, Tensor], x_p: Tensor, cfg: Config, ref_p: Tensor) -> Tensor:
    """Latent codes (K, N, n_q) of inputs x_p (K, N, n_p) at evaluation.

    BatchTopK and Matryoshka select the k * B largest entries of a whole batch, so codes of a batch made only of
    pair samples would depend on that batch. As at inference in Bussmann et al. (2024), these use one threshold per
    model instead: the (k * B)-th largest pre-activation of the ordinary batch ``ref_p`` (K, B, n_p) of the law.
    """
    if not cfg.impl.batch_coupled:
        return encode(params, x_p, cfg)[1]
    z_ref, _ = encode(params, ref_p, cfg)
    K, B, _ = z_ref.shape
    theta = z_ref.reshape(K, -1).topk(cfg.k * B, dim=-1).values[:, -1].clamp_min(0)      # (K,)
    z, _ = encode(params, x_p, cfg)
    return z * (z > theta[:, None, None])


def pair_samples(tc, n: int, parent: int, j: int | None, generator: torch.Generator) -> Tensor:
    """n codes (n, n_features) of the law ``tc`` with parent ``parent`` and its child ``j`` forced on (magnitudes
    c_min + Exp(beta)) and the other children of that parent off (``j`` None: every child off, the parent alone):
    the samples on which absorption is scored, the same construction for a hierarchy and for its control."""
    x = tc.sample(n, generator)
    kids = [tc.child(parent, i) for i in range(tc.n_children)]
    x[:, kids] = 0
    mag = tc.c_min + tc.beta * torch.empty(n, 2, dtype=x.dtype).exponential_(1.0, generator=generator)
    x[:, parent] = mag[:, 0]
    if j is not None:
        x[:, tc.child(parent, j)] = mag[:, 1]
    return x


@torch.no_grad()
def absorption_frame(params: dict[str, Tensor], gt, cfg: Config, n_eval: int = 1000, seed: int = 4242,
                     carry: float = CARRY, a_params: dict[str, Tensor] | None = None) -> pd.DataFrame:
    """One row per (model k, parent, child j): :func:`metrics.absorption_scores` on ``n_eval`` pair samples and
    ``n_eval`` samples of the parent alone,
    ``absorbed`` (full > 1/2), and Theorem 3.8's a_j: the pre-activation <w_E^{i_P}, v_j> of the parent's latent on
    the atom v_j = (w_P + w_c) / ||w_P + w_c|| (bias left out: it is the same for every child of one latent), with
    ``a_rank`` its rank among the parent's children (0: smallest, the child the construction splits off).
    The parent latent of a_j is the one of the parent's most frequent child, so that all children share it; with
    ``a_params`` (e.g. an early snapshot of the same run) a_j is read from THOSE encoder rows, same latent index."""
    tc = gt.coefficients
    g = torch.Generator().manual_seed(seed)
    P = with_decoder(params)
    K = params["W_E"].shape[0]
    ref = (tc.sample(4096, g) @ gt.W_p.T).expand(K, -1, -1)
    W = gt.W_p
    rows = []
    for p in range(tc.n_parents):
        kids = [tc.child(p, j) for j in range(tc.n_children)]
        alone = pair_samples(tc, n_eval, p, None, g)             # the parent without any child, shared by all j
        xs = [torch.cat([pair_samples(tc, n_eval, p, j, g), alone]) for j in range(tc.n_children)]
        codes = [eval_codes(params, (x @ W.T).expand(K, -1, -1), cfg, ref) for x in xs]
        atoms = W[:, [p]] + W[:, kids]
        atoms = atoms / atoms.norm(dim=0, keepdim=True)
        for k in range(K):
            scores = [absorption_scores(codes[j][k], xs[j], P["W_D"][k], W, p, c, carry) for j, c in enumerate(kids)]
            i_p = next((s["parent_latent"] for s in scores if s["parent_latent"] >= 0), -1)
            a_j = ((a_params or params)["W_E"][k][i_p] @ atoms).tolist() if i_p >= 0 else [float("nan")] * len(kids)
            order = sorted(range(len(kids)), key=lambda j: a_j[j])
            for j, s in enumerate(scores):
                rows.append({"model": k, "parent": p, "child": j, **s, "absorbed": s["full"] > ABSORBED,
                             "a_j": a_j[j], "a_rank": order.index(j) if i_p >= 0 else -1})
    return pd.DataFrame(rows)


@dataclass
class Snapshots:
    """A ``train`` callback keeping a copy of the parameters after each of ``steps`` (1-based step counts)."""

    steps: tuple[int, ...]
    params: dict[int, dict[str, Tensor]] = field(default_factory=dict)

    def __call__(self, state: State, terms: dict) -> None:
        if state.step in self.steps:
            self.params[state.step] = {n: p.detach().cpu().clone() for n, p in state.params.items()}


def run(cases: dict, seeds: list[int], snapshot_steps: tuple[int, ...] = (), device="cpu") -> dict:
    """Train every case ``{label: (gt, cfg, n_q)}`` with all ``seeds`` batched; returns ``{label: (state,
    snapshots)}``, states on the CPU, with parameter snapshots after ``snapshot_steps``."""
    out = {}
    for label, (gt, cfg, n_q) in cases.items():
        snap = Snapshots(tuple(snapshot_steps))
        state = train(gt, cfg, n_q, seeds, progress=False, desc=str(label), callback=snap, device=device)
        to_device(state, "cpu")
        out[label] = (state, snap)
    return out


def case_frame(runs: dict, cases: dict, seeds: list[int], n_eval: int = 500, carry: float = CARRY,
               onset: float = 0.1) -> pd.DataFrame:
    """All cases' :func:`absorption_frame` rows in one table, with the case's label fields (``cases[key] = (gt,
    cfg, n_q)``, ``key`` a tuple of (name, value) pairs) and the seed.

    For runs with parameter snapshots, in worlds with at least two children per parent (a choice of child) and a
    hierarchy (not the control), Theorem 3.8's a_j is also read *before absorption sets in*, parent by parent: at
    the last snapshot before the first one where the full absorption of any of its children reaches ``onset`` (the
    last snapshot if none does; undefined, NaN, if one already does at the first), one snapshot for all its
    children so that their ranks compare. Columns ``a_rank_before``, ``a_j_before``, ``step_before``,
    ``full_before``; a_j is read on the latent that ends up as the parent latent.
    """
    out = []
    for key, (state, snap) in runs.items():
        gt, cfg, _ = cases[key]
        t = absorption_frame(state.params, gt, cfg, n_eval, carry=carry)
        tc = gt.coefficients
        if snap.params and tc.n_children > 1 and not getattr(tc, "independent", False):
            steps = sorted(snap.params)
            full = [absorption_frame(snap.params[s], gt, cfg, n_eval, carry=carry)["full"].values for s in steps]
            early = [absorption_frame(state.params, gt, cfg, n_eval, carry=carry, a_params=snap.params[s])
                     for s in steps]
            cols = ["a_rank_before", "a_j_before", "step_before", "full_before"]
            for col in cols:
                t[col] = float("nan")
            for _, rows in t.groupby(["model", "parent"]).groups.items():
                crossed = [i for i, f in enumerate(full) if (f[rows] >= onset).any()]
                i = (crossed[0] - 1) if crossed else len(steps) - 1
                if i >= 0:
                    e = early[i].loc[rows]
                    t.loc[rows, cols] = np.column_stack([e["a_rank"], e["a_j"], [steps[i]] * len(rows),
                                                         full[i][rows]])
        t["seed"] = [seeds[m] for m in t["model"]]
        for name, value in key:
            t[name] = value
        out.append(t)
    return pd.concat(out, ignore_index=True)


def _poisson_binomial(p: np.ndarray) -> np.ndarray:
    """pmf (len(p) + 1,) of a sum of independent Bernoulli(p_g)."""
    pmf = np.ones(1)
    for q in p:
        pmf = np.convolve(pmf, [1 - q, q])
    return pmf


def j_star_groups(frame: pd.DataFrame, rank: str = "a_rank",
                  by: tuple[str, ...] = ("method", "pressure", "rho", "seed", "parent")) -> pd.DataFrame:
    """One row per parent of one run with some but not all children absorbed (the others carry no information
    about WHICH child is absorbed): ``n_children``, ``n_absorbed``, ``j_star`` (the child of smallest a_j,
    ``rank`` 0) and ``hit``, whether it is absorbed. Parents without a complete set of ranks are left out."""
    by = [c for c in by if c in frame.columns]
    rows = []
    for key, g in frame[frame[rank] >= 0].groupby(by):
        if sorted(g[rank]) != list(range(len(g))):
            continue
        n_abs = int(g["absorbed"].sum())
        if 0 < n_abs < len(g):
            star = g.loc[g[rank] == 0].iloc[0]
            rows.append(dict(zip(by, key if isinstance(key, tuple) else (key,)), n_children=len(g),
                             n_absorbed=n_abs, j_star=int(star["child"]), hit=bool(star["absorbed"])))
    return pd.DataFrame(rows, columns=[*by, "n_children", "n_absorbed", "j_star", "hit"])


def j_star_test(groups: pd.DataFrame, lift: float = 0.0, alpha: float = 0.05) -> dict:
    """Is the least-activated child (Thm 3.8's j*) absorbed more often than chance, per parent?

    T = number of parents (rows of :func:`j_star_groups`) whose smallest-a_j child is absorbed. Null: within a
    parent the absorbed labels are a random permutation of the same labels, so the parent's hit is Bernoulli(
    n_absorbed / n_children) and T follows their Poisson-binomial law (the exact permutation distribution).
    Returns the observed T, its expectation, the one-sided p-values (``p_more``: T this large or larger,
    ``p_less``), and ``power``: the chance of p_more < ``alpha`` when in each parent, with probability ``lift``,
    j* is absorbed for sure (a planted effect on the same parents).
    """
    p = (groups["n_absorbed"] / groups["n_children"]).to_numpy(float)
    pmf, T = _poisson_binomial(p), int(groups["hit"].sum())
    tail = np.cumsum(pmf[::-1])[::-1]                        # tail[t] = P(T_null >= t)
    crit = next((t for t in range(len(p) + 1) if tail[t] < alpha), len(p) + 1)
    planted = _poisson_binomial(lift + (1 - lift) * p)
    return {"parents": len(p), "observed": T, "expected": float(p.sum()), "p_more": float(tail[T]),
            "p_less": float(pmf[:T + 1].sum()), "power": float(planted[crit:].sum()), "lift": lift,
            "detectable": crit <= len(p)}
