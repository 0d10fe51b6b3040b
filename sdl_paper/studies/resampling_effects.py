"""The analyses behind the resampling chapter: dead latents at the resampling steps of the runs without a remedy,
what became of each resampled latent (revivals, per seed), and the loss spike after resampling relative to the run
without a remedy.

A run is ``(state, rec)`` from :func:`~sdl_paper.studies.experiments.run_cases`, keyed ``(setting, remedy)``; its
K seeds train as one batched model with n_q latents and ``rec.firing()`` is (steps, K, n_q).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import experiments as ex
from . import remedies as R


def dead_at_events(runs: dict, settings, events, seeds: list[int], dead_window: int) -> pd.DataFrame:
    """One row per (setting, resampling step s, seed): the fraction of latents of the run without a remedy that
    did not fire in the ``dead_window`` steps before s (what the recipe would resample at s)."""
    dead_rows = []
    for setting in settings:
        firing = runs[(setting, "none")][1].firing()  # (steps, K, n_q)
        for s in events:
            frac = ex.dead_by_window(firing[:s], [dead_window])[0]  # (K,) dead at step s
            dead_rows += [{"setting": setting, "step": s, "seed": seeds[i], "dead": float(frac[i])}
                          for i in range(len(seeds))]
    return pd.DataFrame(dead_rows)


def revival_frames(runs: dict, cases: dict, gt, seeds: list[int], dead_window: int) -> dict:
    """What became of the resampled latents of every run whose remedy is "resample".

    Args:
        cases: ``{(setting, remedy): (gt, cfg, n_q)}``; gt: the ground truth (W_p (n_p, n)) the latents may recover.

    Returns ``{"rev": ...}``, one row per resampled latent and event (:func:`~sdl_paper.studies.remedies.revivals`
    plus ``setting``, ``remedy``, ``seed``), and ``{"per_seed": ...}``, one row per (setting, remedy, seed) of
    every resampling run: latents resampled, shares that fire on their own input and came alive, and for each
    latent's last resampling the share alive at the end and the counts that recover a feature (cos >= tau) and
    that are the only live latent for it; a seed that resampled nothing counts 0 resampled, recovers, only_one.
    """
    rev = []
    for (setting, name), (st, rc) in runs.items():
        if cases[(setting, name)][1].remedy == "resample":
            t = R.revivals(st, rc.firing(), gt, dead_window, cases[(setting, name)][1].tau)
            rev.append(t.assign(setting=setting, remedy=name, seed=[seeds[m] for m in t.model]))
    rev = pd.concat(rev)
    ends = rev[rev["last"]].astype({"alive_end": bool, "recovers": bool, "only_one": bool})
    full = pd.MultiIndex.from_tuples([(*c, s_) for c in cases if cases[c][1].remedy == "resample"
                                      for s_ in seeds], names=["setting", "remedy", "seed"])
    per_seed = rev.groupby(["setting", "remedy", "seed"]).agg(
        resampled=("latent", "size"), fires_own=("fires_own", "mean"),
        came_alive=("came_alive", "mean"))
    per_seed = per_seed.join(ends.groupby(["setting", "remedy", "seed"]).agg(
        alive_end=("alive_end", "mean"), recovers=("recovers", "sum"), only_one=("only_one", "sum")))
    per_seed = per_seed.reindex(full).fillna({"resampled": 0, "recovers": 0, "only_one": 0})
    return {"rev": rev, "per_seed": per_seed}


def spike_frame(hist: pd.DataFrame, events, r_step: int, width: int, single) -> pd.DataFrame:
    """Mean and s.e. over seeds of the loss spike per (setting, remedy).

    The spike at step s is :func:`~sdl_paper.studies.remedies.spike_ratio` (mean loss over ``width`` logged steps
    after s over the ``width`` before) divided by the same ratio of the run without a remedy (remedy "none") at the
    same step and seed, averaged over ``events``; remedies in ``single`` are read at ``r_step`` only. ``hist`` is
    the long loss history with columns ``setting``, ``remedy``, ``seed``, ``step`` and ``loss``.
    """
    at = {s: R.spike_ratio(hist, s, width) for s in events}  # (setting, remedy, seed) -> ratio
    rows = []
    for setting, name, sd in at[r_step].index:
        steps_of = (r_step,) if name in single else events
        rel = [at[s][(setting, name, sd)] / at[s][(setting, "none", sd)] for s in steps_of]
        rows.append({"setting": setting, "remedy": name, "seed": sd, "spike": float(np.mean(rel))})
    return pd.DataFrame(rows).groupby(["setting", "remedy"])["spike"].agg(["mean", "sem"])
