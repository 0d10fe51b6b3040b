"""Property test of every chapter's validation: parameter combinations drawn around each chapter's declared
ranges are either refused before any work with a one-line ParameterError, or accepted, and then every sweep list
parses to finite numbers and the chapter's setup code (its code cells tagged ``setup``: imports, worlds, the
configurations of every run, no training) runs without error. Any other exception (a TypeError, a ValueError
from Config, a failed assertion of the setup) is a failure: it is the class of "values that pass validation
and then fail" found one by one before."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jupytext
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdl_paper.book import chapters
from sdl_paper.book.parameters import ParameterError, number_list

TEXTS = ["inf,1", "2.0,4", "nan", "", "1,,2", "0", "-1,2", "1e9,2", "0.5", "1,2,3", "relu", "topk:0", "topk:3",
         "relu>topk:1", "jumprelu:nan", "jumprelu:0.5", "batchtopk:2", "sparkle", "0.1,0.9", "3,5"]
SIZE_CAP = 96   # integer draws stay small: preflights generate the chapter's world


def _values(p):
    if p.choices is not None:
        return st.sampled_from(p.choices)
    if p.type is bool:
        return st.booleans()
    if p.type is int:
        lo = -2 if p.low is None else int(p.low) - 2
        hi = min(SIZE_CAP, lo + SIZE_CAP) if p.high is None else min(int(p.high) + 2, lo + SIZE_CAP)
        return st.integers(lo, max(lo, hi))
    if p.type is float:
        lo = -2.0 if p.low is None else p.low - 1.0
        hi = 1e4 if p.high is None else p.high + 1.0
        return st.one_of(st.floats(lo, hi), st.sampled_from([float("nan"), float("inf"), p.low or 0.0,
                                                               p.high or 1.0]))
    return st.one_of(st.sampled_from(TEXTS), st.just(p.default))


def setup_cells(chapter) -> list[str]:
    """The sources of the notebook's code cells tagged ``setup``, in order."""
    nb = jupytext.read(Path(chapters.NOTEBOOKS) / chapter.notebook)
    return [c.source for c in nb.cells if c.cell_type == "code" and "setup" in c.metadata.get("tags", [])]


SETUP = {name: setup_cells(ch) for name, ch in chapters.CHAPTERS.items()}


def run_setup(name: str, values: dict) -> None:
    """Execute the chapter's setup cells on ``values`` in a fresh namespace, in a scratch folder (a cell may make
    a temporary folder), on the CPU."""
    ns = dict(values, __name__="__main__")
    if "device" in ns:
        ns["device"] = "cpu"
    old_cwd, old_tmp = os.getcwd(), tempfile.tempdir
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        tempfile.tempdir = scratch
        try:
            for source in SETUP[name]:
                exec(compile(source, f"<{name} setup>", "exec"), ns)
        finally:
            os.chdir(old_cwd)
            tempfile.tempdir = old_tmp


@pytest.mark.parametrize("name", sorted(chapters.CHAPTERS))
def test_every_chapter_has_setup_cells_that_accept_its_defaults(name):
    assert SETUP[name], f"{name}: no code cell is tagged 'setup'"
    assert not any("sdl.train(" in s or ".run(" in s or "run_curves(" in s for s in SETUP[name]), \
        f"{name}: a setup cell trains (setup cells only build what the run needs)"
    run_setup(name, chapters.get(name).resolve({}, "smoke"))


LISTS = {name: [k for k, p in ch.params.items() if p.type is str and "," in str(p.default) or k.endswith("_values")]
         for name, ch in chapters.CHAPTERS.items()}


@pytest.mark.parametrize("name", sorted(chapters.CHAPTERS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validation_refuses_in_one_line_or_accepts_values_that_parse(name, data):
    ch = chapters.get(name)
    keys = data.draw(st.lists(st.sampled_from(sorted(ch.params)), min_size=1, max_size=3, unique=True))
    overrides = {k: data.draw(_values(ch.params[k]), label=k) for k in keys}
    try:
        values = ch.resolve(overrides, "smoke")
        if ch.preflight is not None:
            ch.preflight(values)
    except ParameterError as e:
        assert str(e) and "\n" not in str(e), f"not a one-line message: {e!r}"
        return
    for k in LISTS[name]:
        parsed = number_list(values[k], int if "step" in k or k in ("windows", "k_values", "anchor_values")
                             else float)
        assert parsed, f"{k}={values[k]!r} was accepted but holds no numbers"
    run_setup(name, values)
