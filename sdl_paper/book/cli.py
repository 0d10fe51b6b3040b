"""Command line: ``sdl-paper list`` and ``sdl-paper run CHAPTER -p NAME VALUE ... --preset P --out DIR``."""
from __future__ import annotations

import argparse
import sys

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
    args = parser.parse_args(argv)
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
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
