"""Chapter prose carries no hand-typed parameter values: every number that depends on a parameter is glued.

A value typed into the text (say "S = 0.998") goes stale as soon as a reader re-runs the chapter with
``-p S 0.995``. This scans every chapter's prose (code cells, fenced examples, inline code and glue roles removed)
for the default value of any of its numeric parameters.
"""
import re

import pytest

from sdl_paper.book import chapters

_STRIP = [
    re.compile(r"\A---\n.*?\n---\n", re.S),              # front matter
    re.compile(r"^(`{3,})[^\n]*\n.*?^\1\s*$", re.S | re.M),  # code cells and fenced examples
    re.compile(r"\{[\w:-]+\}`[^`]*`"),                   # roles: {glue:text}`key:.3f`, {ref}`x`, {cite:p}`y`
    re.compile(r"`[^`]*`"),                              # inline code
    re.compile(r"^\([\w-]+\)=$", re.M),                  # labels
    re.compile(r"^:[\w-]+:.*$", re.M),                   # directive options
]


# Numbers in prose that coincide with a parameter's default but are not that parameter (fixed constants of a
# construction or of a check), with the reason.
_NOT_PARAMETERS = {
    # the paper's sizes and values, quoted (our defaults differ or coincide by chance)
    "lrb": ["S = 0.99, M = 0.1.", "$\\tau = 0.95$", "norm 0.1,", "(32 against 10)", "S = 0.99, k = 32)"],
    "anchoring": ["k = 32 / 64 / 128", "lambda_anchor = 0.1)", "1 - S = 0.1 the"],
    "loss_approximation": ["$1 - S = 0.1/n$",      # a fixed point of the sparsity axis, not M
                           "$0.3/n$"],            # the fixed window of certificate 2, not theta
    "spurious_minima": ["\\langle w^1, w^2\\rangle = 0.2$"],   # the fixed Gram matrix of counterexample (b)
}


def prose(text: str, chapter: str | None = None) -> str:
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    for phrase in _NOT_PARAMETERS.get(chapter, []):
        assert phrase in text, f"stale exemption {phrase!r} for {chapter}"
        text = text.replace(phrase, " ")
    return text


def _tokens(value) -> set[str]:
    """How a hand-typed copy of ``value`` would look; trivial values (small integers, 0, 1) are not checked."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return set()
    if float(value).is_integer() and abs(value) <= 10:
        return set()
    return {f"{value:g}", repr(value)} | ({f"{value:,}"} if isinstance(value, int) else set())


def hand_typed(chapter: chapters.Chapter) -> list[str]:
    text = prose(chapter.path.read_text(), chapter.name)
    found = []
    for name, param in chapter.params.items():
        for token in _tokens(param.default):
            for m in re.finditer(rf"(?<![\w.,]){re.escape(token)}(?![\w]|[.,]\d)", text):
                found.append(f"{name}={token!s}: ...{text[max(0, m.start() - 40):m.end() + 20]!r}...")
    return found


def test_the_scan_finds_a_typed_value_and_ignores_glued_ones():
    typed = "We train at $S = 0.998$ for 1500 steps."
    glued = "We train at $S$ = {glue:text}`S:.3f` for {glue:text}`steps:d` steps (`-p S 0.998`)."
    assert "0.998" in prose(typed) and "0.998" not in prose(glued) and "1500" not in prose(glued)


@pytest.mark.parametrize("name", list(chapters.CHAPTERS))
def test_no_parameter_value_is_typed_into_prose(name):
    found = hand_typed(chapters.get(name))
    assert not found, "glue these values instead of typing them:\n" + "\n".join(found)


def _code_cells(text: str) -> list[tuple[list[str], str]]:
    """(tags line if any, source lines) of every code cell."""
    cells = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", text, re.S | re.M)
    out = []
    for body in cells:
        body = re.sub(r"\A---\n.*?^---\n", "", body, flags=re.S | re.M)  # cell options (captions wrap)
        lines = body.splitlines()
        tags = next((ln for ln in lines if ln.startswith(":tags:")), "")
        out.append((tags, [ln for ln in lines if not ln.startswith(":")]))
    return out


@pytest.mark.parametrize("name", list(chapters.CHAPTERS))
def test_code_fits_the_book_column(name):
    long = [ln for _, cell in _code_cells(chapters.get(name).path.read_text()) for ln in cell if len(ln) >= 100]
    assert not long, f"{len(long)} code lines of 100 characters or more, e.g. {long[0]!r}"
