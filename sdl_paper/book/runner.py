"""Execute one chapter notebook with new parameters through papermill.

Everything is checked before execution; the executed notebook and its figures are written to a temporary folder
and moved into place only when the whole run succeeded, so a failed run leaves nothing behind.
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from . import chapters, render
from ..io.files import with_umask


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


def _logged_kernel(log) -> type:
    """A kernel manager whose kernel writes its own stderr (not the cells' output, which the notebook keeps) to
    the open file ``log``: a kernel torn down by a signal prints nothing on the terminal, and a kernel that died
    leaves its last words to report."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            return await super().start_kernel(**kw, stderr=log)
    return LoggedKernelManager


def _tail(log, chars: int = 2000) -> str:
    """The end of the kernel's ``log``, indented, or nothing when it is empty."""
    log.seek(0)
    text = log.read().decode(errors="replace").strip()[-chars:]
    return "\n  its last output:\n  " + text.replace("\n", "\n  ") if text else ""


MANIFEST = ".sdl-paper-outputs.json"   # in an output folder: {chapter: [files it wrote]}; only these are replaced


def _manifest(out: Path) -> dict[str, list[str]]:
    """The files earlier runs wrote into ``out`` (empty for a new folder); a damaged manifest is refused."""
    path = out / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise chapters.ParameterError(f"--out {out}: its {MANIFEST} is damaged ({e}); choose a new folder") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(f, str) for f in v)
                                             for v in data.values()):
        raise chapters.ParameterError(f"--out {out}: its {MANIFEST} is not ours; choose a new folder")
    return data


def _check_out(out: Path) -> None:
    """Refuse an output folder that is a file, that holds files this tool did not write, or that cannot be
    created or written, before any work."""
    if out.exists() and not out.is_dir():
        raise chapters.ParameterError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise chapters.ParameterError(f"--out {out} holds files that sdl-paper did not write; choose a new or "
                                      "empty folder (nothing of yours is ever replaced or removed)")
    if out.is_dir():
        _manifest(out)                              # a damaged manifest is refused now, not after the run
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
    (``out/figures/<glue key>.png``) and, with ``html``, the rendered page ``out/<name>.html`` (+ ``out/_static``,
    ``out/_images``).

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
    from nbclient.exceptions import DeadKernelError

    nb = jupytext.read(chapter.path)
    with (tempfile.TemporaryDirectory(prefix=f".{name}-", dir=out.parent if out.parent.exists() else None) as tmp,
          tempfile.TemporaryFile() as kernel_log):        # unnamed: gone on any exit
        tmp = Path(tmp)
        target = tmp / f"{name}.ipynb"
        before = os.environ.get("SDL_PROGRESS")
        os.environ["SDL_PROGRESS"] = "0"   # the kernel inherits it: no training bars in the executed notebook
        try:
            executed = papermill.execute_notebook(
                nb, str(target), parameters=params, cwd=str(chapter.path.parent), kernel_name="python3",
                progress_bar=progress, log_output=False, report_mode=False,
                kernel_manager_class=_logged_kernel(kernel_log))
        except papermill.PapermillExecutionError as e:
            raise chapters.ChapterFailed(f"chapter {name!r} failed, nothing written to {out}:\n{e}") from None
        except DeadKernelError:
            raise chapters.ChapterFailed(
                f"chapter {name!r}: its kernel died (killed from outside, or out of memory: try smaller "
                f"parameters), nothing written to {out}" + _tail(kernel_log)) from None
        finally:
            os.environ.pop("SDL_PROGRESS") if before is None else os.environ.update(SDL_PROGRESS=before)
        executed.metadata.papermill["input_path"] = str(chapter.path)
        executed.metadata.papermill["preset"] = preset
        nbformat.write(executed, target)
        _extract_figures(executed, tmp / "figures")
        if html:
            render.render_page(target, tmp)
        _place(tmp, out, name)
    return out / f"{name}.ipynb"


def _place(tmp: Path, out: Path, name: str) -> None:
    """Move the files of ``tmp`` into ``out``, replacing only files that earlier runs wrote there (the
    manifest), removing this chapter's earlier files that the new run did not write, then update the manifest.
    Every collision with a file that is not ours is refused before anything moves."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(out)
    ours = {f for files in manifest.values() for f in files}
    new = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
    clash = [f for f in new if (out / f).is_symlink() or ((out / f).exists() and f not in ours)
             or any(parent.is_symlink() or parent.is_file() for parent in (out / f).parents if out in parent.parents)]
    if clash:
        raise chapters.ChapterFailed(f"chapter {name!r} ran, but {out} holds {clash[0]!r}, which sdl-paper did "
                                     "not write; nothing was written (choose a new folder)")
    with_umask(tmp)
    for f in new:
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / f, out / f)
    others = {f for key, files in manifest.items() if key != name for f in files}
    for f in set(manifest.get(name, [])) - set(new) - others:
        if (out / f).is_file() and not (out / f).is_symlink():
            (out / f).unlink()
    manifest[name] = new
    fd, part = tempfile.mkstemp(prefix=f"{MANIFEST}.", dir=out)
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=1)
    with_umask(Path(part))
    os.replace(part, out / MANIFEST)
