"""Execute the book's chapters in parallel into the Jupyter Book cache, so that `jupyter-book build` only renders.

Jupyter Book 1 executes notebooks one after another. On a machine with several cores this module runs them
side by side (longest first, one torch thread each) and stores each executed notebook in the jupyter-cache that
the build reads (``_build/.jupyter_cache``, execution mode ``cache``). The notebook is read with myst-nb's own
reader, so the cache key (code cells and kernel) is the one the build computes. Usage:
``python -m sdl_paper.book.bookexec [--cache DIR] [--jobs N] [--preset NAME]``. A preset (``smoke`` for the test
build) is injected as parameters after each chapter's ``parameters`` cell, and the injected cell is dropped before
caching, so the cache key stays the source's: such a build's pages show the source's parameters cell beside the
preset's results, which is for tests, not for publishing. A failing chapter stops with its traceback; the build
would fail on it too.
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from . import chapters

# Expected relative run time of each chapter with default parameters (longest first keeps both cores busy).
_ORDER = ["lrb", "anchoring", "absorption_experiments", "dead_neurons", "spurious_minima", "real_activations", "resampling",
          "loss_approximation", "biconvexity", "framework", "global_minima", "absorption_theory"]


def _read(path: Path):
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    return read_myst_markdown_notebook(path.read_text(encoding="utf-8"), MdParserConfig(), path=path)


def _inject(nb, params: dict) -> None:
    """Insert a cell assigning ``params`` after the cell tagged ``parameters`` (as papermill does), tagged
    ``injected-parameters``."""
    import nbformat
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, cell)


def _execute(path: str, timeout: int, preset: str | None = None) -> tuple[str, object, float, str | None]:
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ["OMP_NUM_THREADS"] = "1"  # the kernel inherits it: one torch thread per chapter
    os.environ["SDL_PROGRESS"] = "0"     # and this: no training bars in the book's pages
    nb = _read(Path(path))
    if preset:
        _inject(nb, chapters.get(Path(path).stem).resolve(preset=preset))
    result = single_nb_execution(nb, cwd=str(Path(path).parent), allow_errors=False, timeout=timeout,
                                 meta_override=True)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    return path, nb, result.time, result.exc_string if result.err else None


def execute(cache_dir: Path, jobs: int = 2, timeout: int = 1800, preset: str | None = None) -> list[str]:
    """Execute every chapter not already cached (with ``preset``'s parameters); return the names executed."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_dir))
    todo = []
    for name in sorted(chapters.CHAPTERS, key=lambda n: _ORDER.index(n) if n in _ORDER else -1):
        path = chapters.CHAPTERS[name].path
        try:
            cache.match_cache_notebook(_read(path))
        except KeyError:
            todo.append(str(path))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_execute, p, timeout, preset) for p in todo]
        for fut in as_completed(futures):
            path, nb, seconds, err = fut.result()
            if err is not None:
                for f in futures:
                    f.cancel()
                raise SystemExit(f"executing {path} failed:\n{err}")
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(nb, record.uri, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"executed {Path(path).name} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return [Path(p).stem for p in todo]


def install_quiet_kernel() -> Path:
    """Write this environment's ``python3`` kernel spec with the kernel app's log level at ERROR.

    ipykernel 7 logs "Kernel is running over TCP without encryption" at every start (the kernel only listens on
    localhost here); that line would otherwise print once per chapter in every build. Warnings raised by chapter
    code are not affected. Returns the spec's path.
    """
    import json

    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.log_level=ERROR"],
        "display_name": "Python 3 (ipykernel)", "language": "python", "metadata": {"debugger": True},
        "kernel_protocol_version": "5.5"}, indent=1))
    return spec


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("_build/.jupyter_cache"))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--install-kernel", action="store_true", help="only write the quiet python3 kernel spec")
    ap.add_argument("--preset", choices=chapters.PRESETS, help="run every chapter with this preset (tests)")
    args = ap.parse_args(argv)
    if args.install_kernel:
        print(f"wrote {install_quiet_kernel()}")
        return
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    execute(args.cache, jobs=args.jobs, preset=args.preset)


if __name__ == "__main__":
    main()
