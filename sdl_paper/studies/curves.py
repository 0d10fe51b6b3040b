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

from ..training.callbacks import log_steps

STATUSES = ("converged", "still changing", "not converged", "too few seeds")


def curve_steps(total: int, n: int = 20) -> tuple[int, ...]:
    """The 0-based steps a curve is recorded at: about ``n`` log-spaced (:func:`log_steps`), plus the step at two
    thirds of training and two more evenly spaced in the last third, so that :func:`convergence` sees the last
    third of training however few log-spaced steps fall into it."""
    tail = {round(total * f) - 1 for f in (2 / 3, 7 / 9, 8 / 9)}
    return tuple(sorted(set(log_steps(total, n)) | {s for s in tail if 0 <= s < total}))


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


def _last_third(g: pd.DataFrame, col: str, floor: float) -> tuple[float, float, int]:
    """(mean over seeds of each seed's largest absolute deviation of ``col`` from its final value over the last
    third of training, from the last tracked step at or before two thirds of it to the last step, so that a rise
    and fall inside it counts; spread over seeds at the last step, the standard deviation but at least ``floor``;
    the step the last third is measured from)."""
    first, last = g["step"].min(), g["step"].max()
    frm = g[g["step"] <= first + 2 * (last - first) / 3]["step"].max()
    tail = g[g["step"] >= frm].pivot_table(index="step", columns="seed", values=col)
    end = tail.loc[last]
    spread = max(float(end.std(ddof=1)), floor) if len(end) > 1 else float("nan")
    return float((tail - end).abs().max().mean()), spread, int(frm)


def convergence(curves: pd.DataFrame, by: list[str], enc: str = "M_GT_enc", dec: str = "M_GT_dec",
                floor: float = 0.0, plateau: float | None = None) -> pd.DataFrame:
    """The convergence rule, per group ``by``: a run may be judged only once it has converged.

    Over the last third of training (from the last tracked step at or before two thirds of it to the last step),
    a metric *moved* when its change (mean over seeds of each seed's largest absolute deviation from its final
    value) exceeds its spread over seeds at the last step (standard deviation, at least ``floor``, e.g. one feature's share 1 / n, so that
    identical seeds do not make every move count).

    - ``too few seeds``: fewer than two seeds, so there is no spread to compare a change with;
    - ``not converged``: the decoder-column ``dec`` moved (it has not reached its plateau), or, when ``plateau`` is
      given, it ends below that level (mean over seeds);
    - ``still changing``: the decoder is at its plateau but the encoder-row ``enc`` moved;
    - ``converged`` otherwise.
    Returns per group: ``status``, ``dec_final``, ``dec_change``, ``enc_change``, ``spread`` (the encoder's),
    ``seeds``, ``from_step``.
    """
    rows = []
    for key, g in curves.groupby(by, sort=False):
        enc_change, spread, frm = _last_third(g, enc, floor)
        dec_change, dec_spread, _ = _last_third(g, dec, floor)
        last = g[g["step"] == g["step"].max()]
        dec_final, seeds = float(last[dec].mean()), int(last["seed"].nunique())
        status = ("too few seeds" if seeds < 2
                  else "not converged" if dec_change > dec_spread or (plateau is not None and dec_final < plateau)
                  else "still changing" if enc_change > spread else "converged")
        rows.append(dict(zip(by, key if isinstance(key, tuple) else (key,)), status=status, dec_final=dec_final,
                         dec_change=dec_change, enc_change=enc_change, spread=spread, seeds=seeds, from_step=frm))
    return pd.DataFrame(rows)


def judged(curves: pd.DataFrame, by: list[str], metric: str = "M_GT_enc", paired: str = "M_GT_dec",
           floor: float = 0.0, plateau: float | None = None) -> pd.DataFrame:
    """One row per group ``by``: :func:`over_seeds` of :func:`peak_final` (peak, peak_step, final, their
    standard errors, the decoder's at both steps) joined with the :func:`convergence` status."""
    pf = over_seeds(peak_final(curves, by, metric, paired), by)
    conv = convergence(curves, by, metric, paired, floor, plateau).set_index(by)
    order = pd.MultiIndex.from_frame(curves[by].drop_duplicates()) if len(by) > 1 else curves[by[0]].unique()
    out = pf.join(conv[["status", "dec_change", "enc_change", "spread", "from_step"]])
    return out.reindex(order).reset_index()                   # groups in the order the curves list them
