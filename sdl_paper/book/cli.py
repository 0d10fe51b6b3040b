"""Command line: ``sdl-paper list``, ``sdl-paper run CHAPTER -p NAME VALUE ... --preset P --out DIR`` and
``sdl-paper audit PATH [--directions FILE] [--data FILE]``."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from . import chapters


def _list(names: list[str]) -> None:
    for chapter in [chapters.get(n) for n in names] or chapters.CHAPTERS.values():
        print(f"{chapter.name}: {chapter.title}  (notebooks/{chapter.notebook})")
        for preset in chapters.PRESETS:
            changes = chapter.presets.get(preset, {})
            print(f"  preset {preset}: " + (", ".join(f"{k}={v!r}" for k, v in changes.items()) or "the defaults"))
        width = max(map(len, chapter.params))
        for key, p in chapter.params.items():
            print(f"  {key:<{width}}  default {p.default!r:<10}  {p.allowed():<26}  {p.help}")
        print()


def _load_any(path: str):
    """A dictionary folder of ours or a SAELens SAE folder."""
    from pathlib import Path

    from ..io.files import load_dictionary
    from ..io.saelens import import_saelens
    return import_saelens(path) if (Path(path) / "cfg.json").is_file() else load_dictionary(path)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwinds the run (temporary files are removed on the way) to exit 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.code = 128 + signum


def _stop(signum, frame):
    # the run is being abandoned: what the notebook machinery logs as it is torn down (papermill's "kernel died",
    # asyncio's "Task exception was never retrieved" for the cell left running) is not news to the user
    for name in ("papermill", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    raise Interrupted(signum)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _finite_json(report: dict) -> str:
    """The report as JSON; a NaN or infinity (invalid JSON) is refused, naming the fields."""
    import math

    bad = [k for k, v in report.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(f"the audit gave non-finite values for {', '.join(bad)}: the data or the dictionary "
                         "hold NaN or infinite values")
    return json.dumps(report, indent=1, allow_nan=False)


def _audit(args) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from ..model.audit import audit
    from ..data.arrays import open_array

    d = _load_any(args.path)
    truth = None
    if args.plot and Path(args.plot).exists():
        raise ValueError(f"--plot {args.plot} exists; choose a new file (nothing of yours is replaced)")
    if args.directions:
        arr = open_array(Path(args.directions))
        truth = torch.from_numpy(np.asarray(arr[:], dtype=np.float32))
    report = audit(d, truth=truth, data=args.data, model=args.model, n_samples=args.samples, targets=args.targets)
    text = _finite_json(report)
    if args.plot:
        _density_plot(report, Path(args.plot))
    print(text)
    return 0


def _density_plot(report: dict, path) -> None:
    """The audit's feature-density histogram as a PNG at ``path``, a new file (``_audit`` refuses an existing one
    before any work; the hard link refuses one that appears meanwhile)."""
    import os
    import tempfile

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "log10_feature_density" not in report:
        raise ValueError("--plot needs --data: the feature density is measured on activations")
    h = report["log10_feature_density"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.stairs(h["counts"], h["edges"], fill=True)
    ax.set(xlabel="log10 firing frequency", ylabel="latents",
           title=f"feature density ({h['never_fired']} latents never fired)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        try:
            os.link(tmp, path)                       # never replaces: fails if the file appeared meanwhile
        except FileExistsError:
            raise ValueError(f"--plot {path} exists; choose a new file (nothing of yours is replaced)") from None
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sdl-paper", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list chapters with their parameters, defaults, allowed values and presets")
    ls.add_argument("chapters", nargs="*", help="only these chapters")
    run = sub.add_parser("run", help="execute one chapter with papermill")
    run.add_argument("chapter")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override a parameter (repeatable)")
    run.add_argument("--preset", default="book", choices=chapters.PRESETS, help="base values (default: book)")
    run.add_argument("--out", default=None, help="output folder (default: out/CHAPTER)")
    run.add_argument("--no-progress", action="store_true", help="hide the per-cell progress bar")
    run.add_argument("--no-html", action="store_true", help="skip the rendered page (DIR/CHAPTER.html)")
    au = sub.add_parser("audit", help="recovery, latent census and codes of a saved dictionary (ours or SAELens's)")
    au.add_argument("path", help="a dictionary folder (save_dictionary) or a SAELens SAE folder")
    au.add_argument("--directions", help=".npy or .safetensors (n_p, n): known directions, one per column")
    au.add_argument("--data", help=".npy or .safetensors (N, n_p): activations to measure codes on")
    au.add_argument("--targets", help=".npy or .safetensors (N, n_r): what the dictionary reconstructs, row by row "
                    "with --data (a transcoder's MLP outputs); needed for a transcoder")
    au.add_argument("--plot", help="write the feature-density histogram (log10 firing frequency) to this new .png")
    au.add_argument("--model", type=int, default=0, help="which of the file's models (default 0)")
    au.add_argument("--samples", type=_positive, default=8192, help="rows of --data to use (default 8192)")
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()   # only it may set handlers
    handlers = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        return _command(args)
    except Interrupted as e:
        print(f"sdl-paper: stopped by signal {e.code - 128}; nothing written", file=sys.stderr)
        return e.code
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _command(args) -> int:
    from safetensors import SafetensorError

    if args.command == "audit":
        try:
            return _audit(args)
        except (ValueError, OSError, IndexError, TypeError, KeyError, RuntimeError, SafetensorError) as e:
            print(f"sdl-paper: error: {e}", file=sys.stderr)
            return 2
    try:
        if args.command == "list":
            _list(args.chapters)
            return 0
        chapter = chapters.get(args.chapter)
        overrides = {}
        for key, text in args.parameter:
            if key not in chapter.params:
                raise chapters.ParameterError(f"chapter {chapter.name!r} has no parameter {key!r}; "
                                              f"its parameters: {', '.join(chapter.params)}")
            overrides[key] = chapter.params[key].parse(key, text)
        chapter.resolve(overrides, args.preset)     # all checks, before anything is imported or written
        from .runner import run_chapter
        path = run_chapter(chapter.name, overrides, args.preset, args.out, progress=not args.no_progress,
                           html=not args.no_html)
    except chapters.ParameterError as e:
        print(f"sdl-paper: error: {e}", file=sys.stderr)
        return 2
    except chapters.ChapterFailed as e:
        print(f"sdl-paper: {e}", file=sys.stderr)
        return 1
    except OSError as e:            # a full disk, a file size limit, a folder removed under us
        print(f"sdl-paper: error: cannot write the output ({e}); nothing written", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
