import ast

import jupytext
import pytest

from sdl_paper.book import chapters
from sdl_paper.book.chapters import ParameterError


def _parameters_cell(chapter):
    nb = jupytext.read(chapter.path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{chapter.name}: exactly one cell must be tagged 'parameters'"
    return {node.targets[0].id: ast.literal_eval(node.value)
            for node in ast.parse(cells[0].source).body if isinstance(node, ast.Assign)}


@pytest.mark.parametrize("name", list(chapters.CHAPTERS))
def test_notebook_parameters_cell_matches_the_registry(name):
    chapter = chapters.get(name)
    assert _parameters_cell(chapter) == chapter.defaults()


@pytest.mark.parametrize("name", list(chapters.CHAPTERS))
@pytest.mark.parametrize("preset", chapters.PRESETS)
def test_every_preset_is_valid(name, preset):
    chapters.get(name).resolve(preset=preset)


@pytest.mark.parametrize("overrides,match", [
    ({"S": 1.0}, r"'S'=1.0 is out of range; allowed: float in \[0, 1\)"),
    ({"S": -0.1}, "'S'"),
    ({"n_q": 2.5}, "'n_q': expected int, got float"),
    ({"n_q": True}, "'n_q': expected int, got bool"),
    ({"activation": 3}, "'activation': expected str"),
    ({"nq": 3}, "has no parameter 'nq'"),
    ({"device": "tpu"}, "allowed: one of 'auto', 'cpu', 'cuda'"),
    ({"activation": "topk:300", "n_q": 192}, "k <= n_q"),
    ({"activation": "softmax"}, "unknown activation 'softmax'"),
    ({"M": -0.5, "n": 96}, r"M must be >= -1/\(n-1\)"),
    ({"lr": float("nan")}, "not finite"),
])
def test_bad_values_name_the_parameter_and_what_is_allowed(overrides, match):
    with pytest.raises(ParameterError, match=match):
        chapters.get("framework").resolve(overrides)


def test_integers_are_accepted_for_float_parameters():
    assert chapters.get("framework").resolve({"S": 0})["S"] == 0.0


def test_unknown_chapter_and_preset_are_rejected():
    with pytest.raises(ParameterError, match="unknown chapter 'nope'; chapters: framework"):
        chapters.get("nope")
    with pytest.raises(ParameterError, match="unknown preset"):
        chapters.get("framework").resolve(preset="huge")


def test_a_notebooks_check_cell_validates_its_namespace_and_changes_nothing():
    namespace = chapters.get("framework").defaults()
    before = dict(namespace)
    assert chapters.check("framework", namespace) is None and namespace == before
    with pytest.raises(ParameterError, match="'S'=1.5 is out of range"):
        chapters.check("framework", namespace | {"S": 1.5})
    with pytest.raises(ParameterError, match="does not define n_q"):
        chapters.check("framework", {k: v for k, v in namespace.items() if k != "n_q"})


def test_bookexec_injects_a_preset_and_drops_the_injected_cell(tmp_path):
    from sdl_paper.book import bookexec
    path, nb, _, err = bookexec._execute(str(chapters.get("absorption_theory").path), 600, "smoke")
    assert err is None
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    source = bookexec._read(chapters.get("absorption_theory").path)
    assert [c.source for c in nb.cells] == [c.source for c in source.cells]      # the cache key of the source
    bookexec._inject(source, {"n": 3, "S": 0.5})
    at = next(i for i, c in enumerate(source.cells) if "parameters" in c.metadata.get("tags", []))
    assert source.cells[at + 1].source == "n = 3\nS = 0.5"


def test_parsing_command_line_text():
    p = chapters.get("framework").params
    assert p["S"].parse("S", "0.5") == 0.5 and p["n_q"].parse("n_q", "12") == 12
    with pytest.raises(ParameterError, match="'n_q': 'twelve' is not a valid int"):
        p["n_q"].parse("n_q", "twelve")


@pytest.mark.parametrize("name,overrides,match", [
    ("absorption_experiments", {"rho_values": "0,1"}, "rho_values must be at least two"),
    ("absorption_experiments", {"rho_values": "0.5"}, "rho_values"),
    ("absorption_experiments", {"rho_values": "a,b"}, "rho_values"),
    ("absorption_experiments", {"k": 100}, "k must be <= n_q"),
    ("absorption_experiments", {"p_parent": 0.7}, r"'p_parent'=0.7 is out of range"),
    ("dead_neurons", {"S_values": "0.9,1.0"}, "S_values"),
    ("dead_neurons", {"windows": "10,5000"}, r"windows: at least two integers in \[1, steps\]"),
    ("dead_neurons", {"width_ratios": "0.5,2"}, "width_ratios"),
    ("dead_neurons", {"n_seeds": 1}, r"'n_seeds'=1 is out of range"),
    ("resampling", {"dead_window": 400}, "dead_window must be below steps / 6"),
    ("resampling", {"k": 97}, "k must be <= n_q"),
    ("resampling", {"S": 1.0}, r"'S'=1.0 is out of range"),
])
def test_experiment_chapters_reject_bad_values_before_training(name, overrides, match):
    with pytest.raises(ParameterError, match=match):
        chapters.get(name).resolve(overrides)
