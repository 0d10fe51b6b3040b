"""The chapter "Do the verdicts transfer?": Table 1's SAE rows, feature anchoring and per-edge absorption on a
SynthSAEBench-style world (:mod:`sdl_paper.data.synthsaebench`) in place of our own worlds. A
:class:`SynthBench` is a bench for :func:`~sdl_paper.studies.lrb.run_curves`: the same training, arms and curves
as the Linear Representation Bench chapter, on this world's data and evaluation set."""
from __future__ import annotations

import pandas as pd
import torch

from ..data.arrays import as_source
from ..data.synthsaebench import SynthSource, SynthWorld
from ..model import Dictionary
from ..model.audit import edge_absorption
from ..theory import metrics
from ..theory.metrics import ABSORBED, CARRY
from ..training.state import State
from . import curves as cv
from .lrb import BenchMetrics
from .verdicts import Verdict, transfer as rules


def draw_inputs(world: SynthWorld, n: int, seed: int, chunk: int = 4096) -> torch.Tensor:
    """x_p (n, n_p) float32: n samples drawn in chunks (the codes, (chunk, n_features), are not kept)."""
    return torch.cat([x_p for _, x_p in world.chunks(n, torch.Generator().manual_seed(seed), chunk)])


class SynthMetrics(BenchMetrics):
    """:class:`~sdl_paper.studies.lrb.BenchMetrics` on a :class:`SynthBench`'s own seeded evaluation set (its
    inputs carry the world's bias, so they are drawn by the world, not as codes times directions), with
    SynthSAEBench's detection ``F1`` and ``uniqueness`` (each latent matched among the evaluated features)."""

    def views(self, K: int, device):
        x, x_p = self.gt.eval_set
        x_p = x_p.to(device).expand(K, -1, -1)
        return x.to(device), x_p, x_p

    def model_metrics(self, W_E, W_D, a, x, x_r, x_hat) -> dict:
        W_f = self.W_r.to(W_D)
        return super().model_metrics(W_E, W_D, a, x, x_r, x_hat) | {
            "F1": metrics.detection_f1(a, x, W_D, W_f)["F1"], "uniqueness": metrics.uniqueness(W_D, W_f)}


class SynthBench:
    """A SynthWorld as a bench: directions ``W_p`` = ``W_r`` (n_p, n), ``n``, an evaluation set (codes and
    inputs, ``n_eval`` samples) and the training ``data``: ``n_train`` samples drawn once (a fixed set, for a CPU
    budget) or, with ``n_train=None``, fresh samples every step on the training device (the benchmark's
    protocol)."""

    metrics = SynthMetrics

    def __init__(self, world: SynthWorld, n_train: int | None, n_eval: int = 4096, seed: int = 0):
        self.world, self.n, self.W_p, self.W_r = world, world.n, world.W_p, world.W_p
        self.eval_set = world.sample(n_eval, torch.Generator().manual_seed(seed + 12345))
        self.data = SynthSource(world) if n_train is None else as_source(
            draw_inputs(world, n_train, seed), directions=world.W_p)


def world_stats(bench: SynthBench, forest_of: SynthWorld | None = None) -> dict[str, float]:
    """The world's statistics on its evaluation set: L0, co-firing of parents and children (of the forest of
    ``forest_of``, default the bench's world: a control is measured on its world's edges), directions."""
    x, _ = bench.eval_set
    w = bench.world
    f = w if forest_of is None else forest_of
    on = x > 0
    kids = (f.parent >= 0).nonzero().flatten()
    par = f.parent[kids]
    with_parent = on[:, par].float().sum(0)
    both = (on[:, kids] & on[:, par]).float().sum(0)
    cos = (w.W_p.T @ w.W_p).fill_diagonal_(0).abs()
    return {"features": w.n, "in the forest": int((f.level >= 0).sum()), "edges": len(kids),
            "mean L0": float(on.float().sum(1).mean()), "std L0": float(on.float().sum(1).std()),
            "mean P(child | parent)": float((both / with_parent.clamp_min(1))[with_parent > 0].mean()),
            "child without its parent": float((on[:, kids] & ~on[:, par]).float().sum()),
            "largest |cos| between directions": float(cos.max()), "mean |cos|": float(cos.sum() / (w.n * (w.n - 1))),
            "bias norm": float(w.b.norm())}


def edge_frame(states: dict[str, State], world: SynthWorld, meta: dict[str, pd.DataFrame], pairs=None,
               levels: torch.Tensor | None = None, n_samples: int = 8192, seed: int = 0) -> pd.DataFrame:
    """Per-edge absorption of every model of ``states`` (name -> a run's state) on ``world``, one row per (name,
    model, pair): the corrected score's ``full``, ``partial`` and ``not_learned`` (NaN where the pair had no
    samples to score it), the child's depth ``level``, |cos| of the pair's directions ``cos``, and the model's
    columns from ``meta[name]`` (one row per
    model: seed, arm, value). ``pairs`` (default: the world's edges) and ``levels`` (default: its forest's) let
    a control world be scored on another world's edges."""
    pairs = world.edges() if pairs is None else pairs
    levels = world.level if levels is None else levels
    W = world.W_p / world.W_p.norm(dim=0)
    rows = []
    for name, state in states.items():
        reports = edge_absorption(Dictionary.from_state(state), world, n_samples=n_samples, seed=seed, pairs=pairs)
        for report, info in zip(reports, meta[name].to_dict("records"), strict=True):
            rows += [{"name": name, **info, "parent": r["parent"], "child": r["child"],
                      "level": int(levels[r["child"]]), "cos": abs(float(W[:, r["parent"]] @ W[:, r["child"]])),
                      **{key: r.get(key, float("nan")) for key in ("full", "partial", "not_learned")}}
                     for r in report["absorption"]]
    return pd.DataFrame(rows)


def edge_summary(*frames: pd.DataFrame) -> pd.DataFrame:
    """Mean over scored pairs and models of ``full``, ``partial`` and ``not_learned``, and the number of scored
    pairs, per (name, level)."""
    e = pd.concat(frames, ignore_index=True).dropna(subset=["full"])
    g = e.groupby(["name", "level"], sort=False)
    return g[["full", "partial", "not_learned"]].mean().assign(scored=g.size())


def absorption_verdict(edges: pd.DataFrame, ctrl: pd.DataFrame, judged: pd.DataFrame, ctrl_curves: pd.DataFrame,
                       lr: float, n_q: int, row: str = "TopK SAE") -> Verdict:
    """The transfer rule on absorption (:func:`~sdl_paper.studies.verdicts.transfer.edge_absorption`) for ``row``
    at learning rate ``lr``: per-seed means of ``full`` over its scored root-child edges, in the world and in the
    control (``ctrl``: the control's edge frame), the edges absorbed in some seed, and whether both runs
    converged (on F1 and MCC, floor one latent's share; a proxy: the absorbed share is read at the end only).
    Edges whose two directions have |cos| >= :data:`~sdl_paper.theory.metrics.CARRY` are left out: a child's
    latent would carry its parent by construction."""
    def per_seed(e):
        return e[e["level"] == 1].dropna(subset=["full"]).groupby("seed")["full"].mean()
    edges, ctrl = edges[edges["cos"] < CARRY], ctrl[ctrl["cos"] < CARRY]
    h = edges[(edges["name"] == row) & (edges["value"] == lr)]
    absorbed = int(h[(h["level"] == 1) & (h["full"] > ABSORBED)][["parent", "child"]].drop_duplicates().shape[0])
    n_edges = int(h[h["level"] == 1][["parent", "child"]].drop_duplicates().shape[0])
    status = judged.set_index(["row", "value"]).loc[(row, lr), "status"]
    ctrl_status = cv.convergence(ctrl_curves, ["row"], "F1", "MCC", floor=1 / n_q)["status"].iloc[0]
    return rules.edge_absorption(per_seed(h), per_seed(ctrl), absorbed, n_edges,
                                 status == "converged" and ctrl_status == "converged", row)


def models_of(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per model of a run (its seed, arm and swept value), in the order of the run's models."""
    last = curves[curves["step"] == curves["step"].max()]
    return last[["seed", "arm", "value"]].reset_index(drop=True)
