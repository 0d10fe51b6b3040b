"""Compare the glued values of two book builds, chapter by chapter.

    python scripts/compare_glue.py OLD/_build NEW/_build

Reads every ``jupyter_execute/notebooks/*.glue.json`` of both builds (myst-nb writes one per executed chapter) and
prints, per chapter, how many glued values are identical; a value is its text (``text/plain``, ``text/markdown``,
``text/html``), a figure its PNG bytes, compared apart. Wall-clock times (glue names in ``TIMES``) are listed but never count as a difference. Exits 1
when another text value differs or is missing; values only the new build has are listed as new.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


TIMES = ("elapsed", "minutes", "seconds")      # a chapter's own run time, glued for its readers


def values(build: Path) -> dict[str, dict[str, dict]]:
    """{chapter: {glue name: {"text": ..., "png": sha256 or None}}} of one build."""
    out = {}
    for f in sorted((build / "jupyter_execute" / "notebooks").glob("*.glue.json")):
        chapter = {}
        for name, entry in json.loads(f.read_text()).items():
            data = entry.get("data", {})
            text = next((data[m] for m in ("text/plain", "text/markdown", "text/html") if m in data), None)
            png = data.get("image/png")
            chapter[name] = {"text": text, "png": hashlib.sha256(png.encode()).hexdigest() if png else None}
        out[f.name.removesuffix(".glue.json")] = chapter
    return out


def main(old: str, new: str) -> int:
    a, b = values(Path(old)), values(Path(new))
    bad = 0
    for chapter in sorted(set(a) | set(b)):
        x, y = a.get(chapter, {}), b.get(chapter, {})
        texts = [n for n in x if x[n]["png"] is None]
        same = [n for n in texts if n in y and y[n]["text"] == x[n]["text"]]
        figs = [n for n in x if x[n]["png"] is not None]
        same_figs = [n for n in figs if n in y and y[n]["png"] == x[n]["png"]]
        diff = [n for n in texts if n not in same and n not in TIMES]              # changed or gone
        times = [n for n in texts if n not in same and n in TIMES]
        new = [n for n in y if n not in x]
        bad += len(diff)
        print(f"{chapter:24s} values {len(same)}/{len(texts)} identical, figures {len(same_figs)}/{len(figs)} "
              f"identical" + (f"; differ: {', '.join(diff)}" if diff else "")
              + (f"; wall-clock time: {', '.join(times)}" if times else "")
              + (f"; new: {', '.join(new)}" if new else ""))
        for n in diff[:10]:
            print(f"    {n}: {str(x.get(n, {}).get('text'))[:120]!r} -> {str(y.get(n, {}).get('text'))[:120]!r}")
    print(f"{bad} glued values differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
