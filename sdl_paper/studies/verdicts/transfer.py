"""Verdict rules of the chapter "Do the verdicts transfer?": each restates a verdict of the Linear Representation
Bench, anchoring or absorption chapters on the SynthSAEBench-style world as "transfers", "does not transfer" or
"inconclusive" (what can transfer, and so what is tested, is our reading; each rule says it)."""
from __future__ import annotations

import math

import pandas as pd

from . import Verdict
from .bench import FAMILY, ZERO

WORDS = {"reproduced": "transfers", "not reproduced": "does not transfer", "inconclusive": "inconclusive"}


def restate(v: Verdict, where: str) -> Verdict:
    """A chapter's rule applied unchanged on this world, its verdict reworded (reproduced: transfers)."""
    return Verdict(WORDS[v.verdict], f"{where}: {v.evidence}", v.numbers)


def _best(judged: pd.DataFrame, row: str) -> tuple[float, float, object] | None:
    """(final, its standard error, the setting) of the converged setting of ``row`` with the best final value."""
    conv = judged[(judged["row"] == row) & (judged["status"] == "converged")]
    if not len(conv):
        return None
    top = conv.loc[conv["final"].idxmax()]
    return float(top["final"]), float(top["final_se"]), top["value"]


def table1_order(judged: pd.DataFrame, metric: str) -> Verdict:
    """Table 1's finding as the LRB chapter tests it (TopK-family SAEs recover features, ReLU and JumpReLU SAEs
    do not) restated as an order on this world's ``metric`` (ours: the levels, 84% and 0%, belong to the paper's
    bench; the order is what can transfer).

    ``judged``: :func:`~sdl_paper.studies.curves.judged` by (row, value) on ``metric``, ``value`` the learning
    rate. Per row, the converged learning rate with the best final value (mean over seeds). Transfers when the
    worst TopK-family row ends above the best ReLU / JumpReLU row by more than twice the standard error of the
    difference; does not transfer when a ReLU / JumpReLU row ends at or above a TopK-family row; inconclusive
    when a row has no converged learning rate or the gap is within twice its standard error."""
    best = {r: _best(judged, r) for r in FAMILY + ZERO if r in set(judged["row"])}
    missing = [r for r in FAMILY + ZERO if best.get(r) is None]
    nums = {r: dict(final=b[0], se=b[1], lr=b[2]) for r, b in best.items() if b is not None}
    if missing:
        return Verdict("inconclusive", f"no converged learning rate for {', '.join(missing)} ({metric})", nums)
    lo = min(FAMILY, key=lambda r: best[r][0])
    hi = max(ZERO, key=lambda r: best[r][0])
    gap = best[lo][0] - best[hi][0]
    se = math.hypot(best[lo][1], best[hi][1])
    verdict = "transfers" if gap > 2 * se else "does not transfer" if gap <= 0 else "inconclusive"
    text = (f"{metric}: lowest TopK-family row {lo} {best[lo][0]:.3f} ± {best[lo][1]:.3f}, highest ReLU/JumpReLU "
            f"row {hi} {best[hi][0]:.3f} ± {best[hi][1]:.3f}; gap {gap:+.3f} (twice its se {2 * se:.3f})")
    return Verdict(verdict, text, nums | {"gap": gap, "se": se})


def edge_absorption(hier: pd.Series, ctrl: pd.Series, absorbed: int, converged: bool) -> Verdict:
    """The absorption chapter's finding (hierarchy produces absorption; its control, the same features without
    the hierarchy, does not) on this world, for one method: ``hier`` and ``ctrl`` are per-seed means of the
    absorbed share ``full`` over the scored root-child edges, in the hierarchical world and in its control
    (indexed by seed, paired); ``absorbed``: edges with full > 1/2 in the hierarchical world (any seed).

    Transfers when there is absorption (``absorbed`` > 0) and the control is below a tenth of the hierarchy's
    mean and below it in every seed (the absorption chapter's control test); does not transfer otherwise;
    inconclusive when the runs have not converged. The sparsity-pressure trend of that chapter is not tested
    here."""
    h, c = float(hier.mean()), float(ctrl.mean())
    paired = pd.concat([hier, ctrl], axis=1, keys=["h", "c"]).dropna()
    below = bool(len(paired)) and bool((paired["c"] < paired["h"]).all())
    nums = dict(hier=h, ctrl=c, absorbed=absorbed, below_every_seed=below, seeds=len(paired))
    text = (f"root-child edges: full {h:.3f} (hierarchy) vs {c:.3f} (control), control below in "
            f"{int((paired['c'] < paired['h']).sum())} of {len(paired)} seeds; {absorbed} edges absorbed")
    if not converged:
        return Verdict("inconclusive", text + " (not converged)", nums)
    ok = absorbed > 0 and c < 0.1 * h and below
    return Verdict("transfers" if ok else "does not transfer", text, nums)
