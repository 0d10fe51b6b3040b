"""Training results as curves: the tracked metrics of a run as a long table, each curve's peak, step of the peak
and final value (with the decoder's at the same steps), summaries over seeds, and the convergence rule that decides
whether a run may be judged at all.

A run's curves come from the :class:`~sdl_paper.training.callbacks.Tracking` callback (``state.tracked``), for
example with :class:`~sdl_paper.studies.lrb.BenchMetrics` as its measure at
:func:`~sdl_paper.training.callbacks.log_steps`, as a long table by
:func:`~sdl_paper.studies.experiments.tracked_frame` (``seeds=`` for the seeds' own numbers).
"""
from __future__ import annotations

import pandas as pd

STATUSES = ("converged", "still changing", "not converged", "too few seeds")


def peak_final(curves: pd.DataFrame, by: list[str], metric: str = "M_GT_enc",
               paired: str = "M_GT_dec") -> pd.DataFrame:
    """Per group ``by`` and seed: the peak of ``metric``, the step of the peak (the first, on ties), its final
    value, and ``paired`` (the decoder's) at the same two steps."""
    rows = []
    for key, g in curves.sort_values("step").groupby([*by, "seed"], sort=False):
        at_peak, last = g.loc[g[metric].idxmax()], g.iloc[-1]
        rows.append(dict(zip([*by, "seed"], key if isinstance(key, tuple) else (key,)),
                         peak=at_peak[metric], peak_step=int(at_peak["step"]), final=last[metric],
                         final_step=int(last["step"]), paired_at_peak=at_peak[paired], paired_final=last[paired]))
    return pd.DataFrame(rows)


def over_seeds(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean and standard error over seeds of every numeric column of :func:`peak_final` (``<col>_se``; NaN for one
    seed), and the number of seeds."""
    cols = [c for c in table.columns if c not in (*by, "seed")]
    g = table.groupby(by, sort=False)[cols]
    return g.mean().join(g.sem().add_suffix("_se")).assign(seeds=table.groupby(by, sort=False).size())


def convergence(curves: pd.DataFrame, by: list[str], enc: str = "M_GT_enc", dec: str = "M_GT_dec",
                plateau: float = 0.95, floor: float = 0.0) -> pd.DataFrame:
    """The convergence rule, per group ``by``: a run may be judged only once it has converged.

    - ``too few seeds``: fewer than two seeds, so there is no spread to compare a change with;
    - ``not converged``: the decoder-column ``dec`` at the last step is below ``plateau`` (mean over seeds);
    - ``still changing``: the encoder-row ``enc`` moved, between the first tracked step of the last third of
      training and the last step, by more than its spread over seeds at the last step (standard deviation; at
      least ``floor``, e.g. one feature's share 1 / n, so that identical seeds do not make every move count);
    - ``converged`` otherwise.
    Returns per group: ``status``, ``dec_final``, ``enc_change`` (mean over seeds), ``spread``, ``seeds``.
    """
    rows = []
    for key, g in curves.groupby(by, sort=False):
        last_step = g["step"].max()
        third = g[g["step"] >= g["step"].min() + 2 * (last_step - g["step"].min()) / 3]["step"].min()
        start, end = g[g["step"] == third].set_index("seed"), g[g["step"] == last_step].set_index("seed")
        change = float((end[enc] - start[enc]).abs().mean())
        spread = max(float(end[enc].std(ddof=1)), floor) if len(end) > 1 else float("nan")
        dec_final = float(end[dec].mean())
        status = ("too few seeds" if len(end) < 2 else "not converged" if dec_final < plateau
                  else "still changing" if change > spread else "converged")
        rows.append(dict(zip(by, key if isinstance(key, tuple) else (key,)), status=status, dec_final=dec_final,
                         enc_change=change, spread=spread, seeds=len(end)))
    return pd.DataFrame(rows)
