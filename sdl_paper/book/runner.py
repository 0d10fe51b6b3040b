"""Execute one chapter notebook with new parameters through papermill.

Everything is checked before execution; the executed notebook and its figures are written to a temporary folder
and moved into place only when the whole run succeeded, so a failed run leaves nothing behind.
"""
from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import chapters, render


def _extract_figures(nb, folder: Path) -> list[Path]:
    """Write every PNG output of ``nb`` to ``folder`` (named by glue key when glued, else by cell); return paths."""
    written = []
    for i, cell in enumerate(nb.cells):
        for j, out in enumerate(cell.get("outputs", [])):
            # glued outputs carry their mime types behind papermill's record prefix
            png = next((v for k, v in out.get("data", {}).items() if k.endswith("image/png")), None)
            if png is None:
                continue
            key = out.get("metadata", {}).get("scrapbook", {}).get("name")
            path = folder / (f"{key}.png" if key else f"cell{i:02d}_{j}.png")
            folder.mkdir(exist_ok=True)
            path.write_bytes(base64.b64decode(png))
            written.append(path)
    return written


def _check_out(out: Path) -> None:
    """Refuse an output folder that is a file or that cannot be created or written, before any work."""
    if out.exists() and not out.is_dir():
        raise chapters.ParameterError(f"--out {out} exists and is not a folder")
    parent = next(p for p in [out, *out.parents] if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise chapters.ParameterError(f"--out {out}: cannot write there ({parent} is not a writable folder)")
    try:  # permissions can lie (root, read-only or virtual file systems): try the real thing
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as e:
        raise chapters.ParameterError(f"--out {out}: cannot write there ({e.strerror})") from None


def run_chapter(name: str, overrides: dict[str, Any] | None = None, preset: str = "book",
                out: str | Path | None = None, progress: bool = True, html: bool = True) -> Path:
    """Run chapter ``name`` with ``preset`` values then ``overrides``; write ``out/<name>.ipynb``, its figures
    (``out/figures/<glue key>.png``) and, with ``html``, the rendered page ``out/<name>.html`` (+ ``out/_static``).

    Returns the executed notebook's path. Raises :class:`~sdl_paper.book.chapters.ParameterError` before anything is
    executed or written when a chapter, preset, parameter, value or output folder is not allowed.
    """
    import jupytext
    import nbformat
    import papermill

    chapter = chapters.get(name)
    params = chapter.resolve(overrides, preset)
    out = Path(out if out is not None else Path("out") / name).resolve()
    _check_out(out)
    if chapter.preflight is not None:
        chapter.preflight(params)
    if html and not render.available():
        raise chapters.ParameterError("rendering the HTML page needs Jupyter Book 1: pip install 'sdl-paper[book]'"
                                      ", or run without the page (--no-html)")
    nb = jupytext.read(chapter.path)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=out.parent if out.parent.exists() else None) as tmp:
        tmp = Path(tmp)
        target = tmp / f"{name}.ipynb"
        try:
            executed = papermill.execute_notebook(
                nb, str(target), parameters=params, cwd=str(chapter.path.parent), kernel_name="python3",
                progress_bar=progress, log_output=False, report_mode=False)
        except papermill.PapermillExecutionError as e:
            raise chapters.ChapterFailed(f"chapter {name!r} failed, nothing written to {out}:\n{e}") from None
        executed.metadata.papermill["input_path"] = str(chapter.path)
        executed.metadata.papermill["preset"] = preset
        nbformat.write(executed, target)
        _extract_figures(executed, tmp / "figures")
        if html:
            render.render_page(target, tmp)
        out.mkdir(parents=True, exist_ok=True)
        for item in tmp.iterdir():
            dest = out / item.name
            if dest.is_dir():
                shutil.rmtree(dest)
            shutil.move(str(item), dest)
    return out / f"{name}.ipynb"
