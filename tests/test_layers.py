"""The package's layers (scripts/import_graph.py): no import goes up a layer and no modules import each other in a
cycle; the checker itself finds both on a made-up package."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
ig = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ig)


def test_the_package_has_no_upward_import_and_no_cycle():
    graph = ig.imports()
    assert "sdl_paper.training.loop" in graph and "sdl_paper.model.config" in graph["sdl_paper.training.loop"]
    assert ig.upward(graph) == []
    assert ig.cycles(graph) == []


def test_the_checker_finds_an_upward_import_a_lazy_one_and_a_cycle(tmp_path):
    pkg = tmp_path / "sdl_paper"
    for sub in ("data", "model"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text("def f():\n    from ..model import b\n")      # lazy, and upward
    (pkg / "model" / "b.py").write_text("from . import c\n")
    (pkg / "model" / "c.py").write_text("from .b import x\nimport sdl_paper.data.a\n")
    graph = ig.imports(pkg)
    assert ig.upward(graph) == [("sdl_paper.data.a", "sdl_paper.model.b")]
    assert ig.cycles(graph) == [["sdl_paper.data.a", "sdl_paper.model.b", "sdl_paper.model.c"]]   # a -> b -> c -> a
