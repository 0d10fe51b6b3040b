"""Every verdict the book states, each computed by one named function from the measured numbers.

A rule takes the numbers a chapter measured and returns a :class:`Verdict`: the verdict (one of :data:`VERDICTS`),
the evidence in words (the ledger's "decisive number"), and the numbers that decided it. Rules about the theory
chapters are in :mod:`~sdl_paper.studies.verdicts.theory`, rules about experiments in
:mod:`~sdl_paper.studies.verdicts.experiments`; every rule is tested on made-up numbers for each outcome
(``tests/studies/test_verdicts.py``). Chapters call the rules; to change a verdict, change its rule here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

VERDICTS = (
    "holds",
    "holds under stated extra conditions",
    "false: counterexample",
    "not reproduced",
    "reproduced",
    "not testable here",
    "inconclusive",
    "transfers",
    "does not transfer",
    "not yet tested",
)


@dataclass(frozen=True)
class Verdict:
    """A verdict on one claim, the evidence in words, and the numbers that decided it."""

    verdict: str
    evidence: str
    numbers: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


def either(ok: bool, yes: str, no: str, evidence: str, **numbers) -> Verdict:
    """``yes`` when ``ok`` else ``no``, with the evidence and the deciding numbers."""
    return Verdict(yes if ok else no, evidence, numbers)
