"""Verdict rules of the chapter "Do the verdicts transfer?": each restates a verdict of the Linear Representation
Bench, anchoring or absorption chapters on the SynthSAEBench-style world as "transfers", "does not transfer" or
"inconclusive" (what can transfer, and so what is tested, is our reading; each rule says it)."""
from __future__ import annotations

import math

import pandas as pd

from ...theory.metrics import CONTROL_SHARE
from . import Verdict
from .bench import FAMILY, ZERO

WORDS = {"reproduced": "transfers", "not reproduced": "does not transfer", "inconclusive": "inconclusive"}


def restate(v: Verdict, where: str) -> Verdict:
    """A chapter's rule applied unchanged on this world, its verdict reworded (reproduced: transfers)."""
    return Verdict(WORDS[v.verdict], f"{where}, {v.evidence}", v.numbers)


def _best(judged: pd.DataFrame, row: str) -> tuple[float, float, object] | None:
    """(final, its standard error, the setting) of the converged setting of ``row`` with the best final value."""
    conv = judged[(judged["row"] == row) & (judged["status"] == "converged")]
    if not len(conv):
        return None
    top = conv.loc[conv["final"].idxmax()]
    return float(top["final"]), float(top["final_se"]), top["value"]


def table1_order(judged: pd.DataFrame, metric: str, l0: dict[tuple, float] | None = None,
                 k: float | None = None, tol: float = 0.25) -> Verdict:
    """Table 1's finding (TopK-family SAEs recover features, ReLU and JumpReLU SAEs do not), restated by us as an
    order on this world's ``metric``: the levels the LRB chapter tests (84% and 0% of M_GT) belong to the paper's
    bench; the order is what can transfer.

    ``judged``: :func:`~sdl_paper.studies.curves.judged` by (row, value) on ``metric``, ``value`` the learning
    rate. Per row, the converged learning rate with the best final value (mean over seeds). With ``l0`` (the
    final L0 of each (row, learning rate)) and ``k``, the rows must sparsify alike at the learning rates compared:
    a row whose L0 there is off k by more than ``tol`` (relative) makes the comparison inconclusive. Transfers
    when the worst TopK-family row ends above the best ReLU / JumpReLU row by more than twice the standard error
    of the difference; does not transfer when it ends below by more than that; inconclusive otherwise, and when a
    row has no converged learning rate (unlike the LRB chapter's level test, an order needs every row)."""
    rows = FAMILY + ZERO
    best = {r: _best(judged, r) for r in rows}
    nums = {r: dict(final=b[0], se=b[1], lr=b[2]) for r, b in best.items() if b is not None}
    missing = [r for r in rows if best[r] is None]
    if missing:
        return Verdict("inconclusive", f"{metric}: no converged learning rate for {', '.join(missing)}", nums)
    if l0 is not None and k is not None:
        at = {r: l0[(r, best[r][2])] for r in rows}                 # at the learning rate compared
        off = {r: v for r, v in at.items() if abs(v / k - 1) > tol}
        if off:
            return Verdict("inconclusive", f"{metric}: L0 not matched to k = {k:g} within {tol:.0%} ("
                           + ", ".join(f"{r} {v:.1f}" for r, v in off.items()) + ")", nums | {"l0": at})
    lo = min(FAMILY, key=lambda r: best[r][0])
    hi = max(ZERO, key=lambda r: best[r][0])
    gap = best[lo][0] - best[hi][0]
    se = math.hypot(best[lo][1], best[hi][1])
    verdict = "transfers" if gap > 2 * se else "does not transfer" if gap < -2 * se else "inconclusive"
    text = (f"{metric}: lowest TopK-family row {lo} {best[lo][0]:.3f} ± {best[lo][1]:.3f}, highest ReLU/JumpReLU "
            f"row {hi} {best[hi][0]:.3f} ± {best[hi][1]:.3f}; gap {gap:+.3f} (twice its se {2 * se:.3f})")
    return Verdict(verdict, text, nums | {"gap": gap, "se": se})


def edge_absorption(hier: pd.Series, ctrl: pd.Series, absorbed: int, edges: int, converged: bool,
                    row: str = "TopK SAE") -> Verdict:
    """The absorption chapter's finding (hierarchy produces absorption; its control, the same features without
    the hierarchy, does not) on this world, for one method ``row``: ``hier`` and ``ctrl`` are per-seed means of
    the absorbed share ``full`` over the scored root-child edges, in the hierarchical world and in its control
    (indexed by seed, paired); ``absorbed``: of the ``edges`` root-child edges, those with full > 1/2 in some
    seed of the hierarchical world.

    Transfers when there is absorption (``absorbed`` > 0) and the control is below a tenth of the hierarchy's
    mean and below it in every seed (the absorption chapter's control test); does not transfer otherwise;
    inconclusive when the runs have not converged or fewer than two seeds pair up with finite values. The
    sparsity-pressure trend of that chapter is not tested here."""
    paired = pd.concat([hier, ctrl], axis=1, keys=["h", "c"]).dropna()
    h, c = float(paired["h"].mean()), float(paired["c"].mean())
    below = int((paired["c"] < paired["h"]).sum())
    nums = dict(hier=h, ctrl=c, absorbed=absorbed, edges=edges, below=below, seeds=len(paired))
    text = (f"{row}, root-child edges: full {h:.3f} (hierarchy) vs {c:.3f} (control), control below in {below} of "
            f"{len(paired)} seeds; {absorbed} of {edges} edges absorbed")
    if len(paired) < 2:
        return Verdict("inconclusive", text + " (fewer than two seeds scored in both worlds)", nums)
    if not converged:
        return Verdict("inconclusive", text + " (not converged)", nums)
    ok = absorbed > 0 and c < CONTROL_SHARE * h and below == len(paired)
    return Verdict("transfers" if ok else "does not transfer", text, nums)
