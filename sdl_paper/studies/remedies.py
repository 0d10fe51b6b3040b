"""Analysis of dead-latent remedies: what became of each resampled latent, final losses against a baseline seed
by seed, and the loss spike after a resampling step (the resampling and trained-network chapters)."""
from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor

from ..model.dictionary import with_decoder
from ..training.state import State


def revivals(state: State, firing: Tensor, gt, window: int, tau: float = 0.95):
    """One row per resampled latent and event (pandas DataFrame): did it come alive and stay alive, and what did
    it learn.

    Args:
        state: a finished run (its ``resampled`` log and final parameters, on the CPU).
        firing: (steps, K, n_q) bool, every step's firing from step 0 (``Recorder.firing()``).
        window: steps after the event in which a firing counts as "came alive"; the last ``window`` steps of the
            run decide "alive at the end".
        tau: cosine threshold for "recovers a ground-truth feature" (as in M_GT(tau)).

    Columns: ``model``, ``step``, ``latent``, ``fires_own`` (on its own chosen input, right after the write),
    ``z_ratio`` (z_own / z_needed: above 1 the latent fires on that input), ``came_alive`` (fired within
    ``window`` steps), ``last`` (the latent's last resampling), and for the last event only (NaN otherwise):
    ``alive_end``, ``best_cos`` (its final decoder column against the columns w_r^d of W_r), ``recovers``
    (alive at the end with best_cos > tau) and ``only_one`` (it recovers a feature that no other latent alive at
    the end recovers).
    """
    W_D = with_decoder(state.params)["W_D"]                               # (K, n_r, n_q)
    D = W_D / W_D.norm(dim=1, keepdim=True).clamp_min(1e-12)
    T_ = gt.W_r / gt.W_r.norm(dim=0, keepdim=True)
    cos = (D.transpose(1, 2) @ T_.to(D)).abs()                            # (K, n_q, n)
    alive_end = firing[-window:].any(0)                                   # (K, n_q)
    good = (cos > tau) & alive_end[..., None]                             # alive latents that recover a feature
    last_event = {}
    for e_i, e in enumerate(state.resampled):
        for j in e["latents"]:
            last_event[(e["model"], j)] = e_i
    rows = []
    for e_i, e in enumerate(state.resampled):
        k, s = e["model"], e["step"]
        for j, fires, z, need in zip(e["latents"], e["fires_own"], e["z_own"], e["z_needed"]):
            row = {"model": k, "step": s, "latent": j, "fires_own": fires,
                   "z_ratio": z / need if need > 0 else float("inf"),
                   "came_alive": bool(firing[s:s + window, k, j].any()), "last": last_event[(k, j)] == e_i}
            if row["last"]:
                best, d = cos[k, j].max(0)
                others = good[k, torch.arange(good.shape[1]) != j, d].any()
                rec = bool(alive_end[k, j]) and float(best) > tau
                row |= {"alive_end": bool(alive_end[k, j]), "best_cos": float(best), "recovers": rec,
                        "only_one": rec and not bool(others)}
            rows.append(row)
    cols = ["model", "step", "latent", "fires_own", "z_ratio", "came_alive", "last", "alive_end", "best_cos",
            "recovers", "only_one"]
    return pd.DataFrame(rows, columns=cols).astype({"model": int, "step": int, "latent": int, "z_ratio": float,
                                                    "best_cos": float})


def relative_change(final, base: str = "none"):
    """Final losses against a baseline, seed by seed (pandas in, pandas out).

    Args:
        final: DataFrame, index = seeds, one column per remedy, values = final loss of that seed's run.
        base: the column every other column is compared with (same seed).

    Returns one row per other column: ``final loss`` (mean), ``change`` (mean over seeds of final / base - 1),
    ``sem`` (its standard error over seeds) and ``lower`` (seeds where the remedy's loss is below the base's).
    """
    rows = {}
    for name in final.columns.drop(base):
        rel = final[name] / final[base] - 1
        rows[name] = {"final loss": final[name].mean(), "change": rel.mean(), "sem": rel.sem(),
                      "lower": int((final[name] < final[base]).sum()), "seeds": len(final)}
    return pd.DataFrame(rows).T


def spike_ratio(hist, step: int, width: int):
    """Per run and seed: mean logged loss in [step, step + width) over the mean in [step - width, step).

    Args:
        hist: long table with columns ``step``, ``loss``, ``seed`` and label columns (e.g. ``remedy``), as from
            :func:`sdl_paper.studies.experiments.history_frame`.
    Returns a Series indexed by the label columns and ``seed``.
    """
    labels = [c for c in hist.columns if c not in ("step", "loss", "L0", "window_dead", "seed")] + ["seed"]
    pre = hist[(hist.step >= step - width) & (hist.step < step)].groupby(labels)["loss"].mean()
    post = hist[(hist.step >= step) & (hist.step < step + width)].groupby(labels)["loss"].mean()
    return (post / pre).rename("spike ratio")
