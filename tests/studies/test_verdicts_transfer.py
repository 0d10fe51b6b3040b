"""The transfer chapter's rules, each on made-up numbers for every outcome."""
import pandas as pd
import pytest

from sdl_paper.studies.verdicts import Verdict
from sdl_paper.studies.verdicts import transfer as rules

ROWS = ("TopK SAE", "BatchTopK SAE", "Matryoshka SAE", "ReLU SAE", "JumpReLU SAE")


def _judged(finals: dict, se: float = 0.01, status: dict | None = None) -> pd.DataFrame:
    return pd.DataFrame([dict(row=r, value=1e-3, final=finals[r], final_se=se,
                              status=(status or {}).get(r, "converged")) for r in ROWS])


@pytest.mark.parametrize("finals, se, status, verdict", [
    ({"TopK SAE": .6, "BatchTopK SAE": .62, "Matryoshka SAE": .7, "ReLU SAE": .3, "JumpReLU SAE": .35}, .01, None,
     "transfers"),
    ({"TopK SAE": .3, "BatchTopK SAE": .62, "Matryoshka SAE": .7, "ReLU SAE": .5, "JumpReLU SAE": .35}, .01, None,
     "does not transfer"),
    ({"TopK SAE": .49, "BatchTopK SAE": .62, "Matryoshka SAE": .7, "ReLU SAE": .5, "JumpReLU SAE": .35}, .01, None,
     "inconclusive"),                                       # below by 0.01, within twice its se
    ({"TopK SAE": .36, "BatchTopK SAE": .62, "Matryoshka SAE": .7, "ReLU SAE": .3, "JumpReLU SAE": .35}, .01, None,
     "inconclusive"),                                       # a gap of 0.01 against twice its se, 0.028
    ({"TopK SAE": .6, "BatchTopK SAE": .62, "Matryoshka SAE": .7, "ReLU SAE": .3, "JumpReLU SAE": .35}, .01,
     {"ReLU SAE": "not converged"}, "inconclusive"),
])
def test_table1_order(finals, se, status, verdict):
    v = rules.table1_order(_judged(finals, se, status), "F1")
    assert v.verdict == verdict, v.evidence


def test_table1_order_takes_each_rows_best_converged_learning_rate():
    j = _judged({"TopK SAE": .6, "BatchTopK SAE": .62, "Matryoshka SAE": .7, "ReLU SAE": .3, "JumpReLU SAE": .35})
    better = pd.DataFrame([dict(row="ReLU SAE", value=3e-3, final=.9, final_se=.01, status="not converged")])
    assert rules.table1_order(pd.concat([j, better]), "F1").verdict == "transfers"     # not converged: not read
    better["status"] = "converged"
    assert rules.table1_order(pd.concat([j, better]), "F1").verdict == "does not transfer"


def test_table1_order_needs_every_row_at_the_same_sparsity():
    j = _judged({"TopK SAE": .6, "BatchTopK SAE": .62, "Matryoshka SAE": .7, "ReLU SAE": .3, "JumpReLU SAE": .35})
    l0 = {(r, 1e-3): 7.0 for r in ROWS} | {("ReLU SAE", 3e-3): 2.0}   # a rate the rule does not compare
    assert rules.table1_order(j, "F1", l0=l0, k=7).verdict == "transfers"
    v = rules.table1_order(j, "F1", l0=l0 | {("ReLU SAE", 1e-3): 4.8}, k=7)
    assert v.verdict == "inconclusive" and "ReLU SAE 4.8" in v.evidence


@pytest.mark.parametrize("hier, ctrl, absorbed, converged, verdict", [
    ([.5, float("nan"), float("nan")], [.01, .02, .0], 12, True, "inconclusive"),   # one seed pairs up
    ([.5, .6, .55], [.01, .02, .0], 12, True, "transfers"),
    ([.5, .6, .55], [.2, .02, .0], 12, True, "does not transfer"),       # control mean above a tenth
    ([.5, .6, .01], [.01, .02, .02], 12, True, "does not transfer"),     # control above in one seed
    ([.05, .06, .05], [.0, .0, .0], 0, True, "does not transfer"),       # no edge absorbed
    ([.5, .6, .55], [.01, .02, .0], 12, False, "inconclusive"),
])
def test_edge_absorption(hier, ctrl, absorbed, converged, verdict):
    seeds = [0, 1, 2]
    v = rules.edge_absorption(pd.Series(hier, index=seeds), pd.Series(ctrl, index=seeds), absorbed, 32, converged)
    assert v.verdict == verdict, v.evidence


@pytest.mark.parametrize("before, after", [("reproduced", "transfers"), ("not reproduced", "does not transfer"),
                                           ("inconclusive", "inconclusive")])
def test_restate_rewords_a_chapters_verdict_and_keeps_its_numbers(before, after):
    v = rules.restate(Verdict(before, "gain +0.1", {"gain": 0.1}), "SynthSAEBench")
    assert (v.verdict, v.numbers, v.evidence) == (after, {"gain": 0.1}, "SynthSAEBench, gain +0.1")
