"""Progress bars for long work: shown in a terminal, hidden where nobody watches them scroll (a book build, a
papermill run, a log file), so that rendered pages carry no progress-bar traces.

``bar(iterable, desc, show)``: ``show=None`` (the default everywhere) shows the bar when stderr is a terminal, in
a Jupyter kernel, or when the environment variable ``SDL_PROGRESS=1`` is set; ``SDL_PROGRESS=0`` hides it (the
book build and ``sdl-paper run`` set it for the kernels they start); ``show=False`` always hides it.
"""
from __future__ import annotations

import os
import sys

from tqdm.std import tqdm


def visible(show: bool | None = None) -> bool:
    """Whether a progress bar would be drawn for this ``show`` setting: ``False`` never; else ``SDL_PROGRESS``
    (``1`` on, ``0`` off) decides when set; else ``True`` on, and ``None`` on in a terminal or a Jupyter kernel
    (the book build and ``sdl-paper run`` set ``SDL_PROGRESS=0`` for their kernels)."""
    if show is False:
        return False
    env = os.environ.get("SDL_PROGRESS")
    if env in ("0", "1"):
        return env == "1"
    return bool(show) or sys.stderr.isatty() or "ipykernel" in sys.modules


def bar(iterable, desc: str | None = None, show: bool | None = None, **kwargs) -> tqdm:
    """A tqdm bar over ``iterable`` that redraws at most once a second and disappears when done."""
    return tqdm(iterable, desc=desc, disable=not visible(show), mininterval=1.0, leave=False, **kwargs)
