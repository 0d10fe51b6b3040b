"""Collect the book's MyST-markdown notebooks for nbval, each with its chapter's smoke preset injected.

nbval only collects .ipynb files; this reads each chapter's .md with jupytext, injects the smoke parameters after
its ``parameters`` cell (papermill, prepare_only) and hands it to nbval. The kernel's working directory stays the
notebook's folder, as in the book build. A run that includes notebooks/ fails unless every chapter was collected.

Every test process and every notebook kernel runs one torch thread (as ``bookexec`` runs the chapters): pytest
already runs two workers on this machine's two cores, and OpenMP threads beyond the cores spin and wait (a run
with two threads per worker took twice as long). Set OMP_NUM_THREADS to override.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")   # before torch is imported; xdist workers and kernels inherit it
os.environ.setdefault("SDL_PROGRESS", "0")      # no training bars in the chapters' kernels

from pathlib import Path  # noqa: E402

import jupytext  # noqa: E402
import nbformat  # noqa: E402
import papermill  # noqa: E402
import pytest  # noqa: E402
from nbval.plugin import IPyNbFile  # noqa: E402

from sdl_paper.book import chapters  # noqa: E402


def _chapter_for(path: Path) -> chapters.Chapter | None:
    return next((c for c in chapters.CHAPTERS.values() if c.path == path.resolve()), None)


class MystNotebookFile(IPyNbFile):
    def collect(self):
        chapter = _chapter_for(Path(self.path))
        nb = jupytext.read(self.path)
        nb = papermill.execute_notebook(nb, None, parameters=chapter.resolve(preset="smoke"), prepare_only=True,
                                        log_output=False, progress_bar=False)
        real_read = nbformat.read  # IPyNbFile.collect() starts with nbformat.read(self.fspath)
        nbformat.read = lambda *a, **k: nb
        try:
            return list(super().collect())
        finally:
            nbformat.read = real_read


def pytest_collect_file(file_path: Path, parent):
    opt = parent.config.option
    if (opt.nbval or opt.nbval_lax) and file_path.suffix == ".md" and _chapter_for(file_path):
        return MystNotebookFile.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(session, config, items):
    """Fail the run when notebooks/ was asked for but some chapter's notebook produced no test."""
    if not (config.option.nbval or config.option.nbval_lax):
        return
    asked = [Path(a.split("::")[0]).resolve() for a in config.args]
    nb_dir = chapters.NOTEBOOKS
    if not any(nb_dir == p or nb_dir.is_relative_to(p) for p in asked):
        return
    collected = {Path(item.path).resolve() for item in items if isinstance(item.parent, MystNotebookFile)}
    missing = [c.name for c in chapters.CHAPTERS.values() if c.path not in collected]
    if missing:
        raise pytest.UsageError(f"no nbval tests collected for chapter notebooks: {', '.join(missing)}")
