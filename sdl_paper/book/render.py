"""Render one executed chapter as an HTML page like the book's (math, proofs, citations, glued numbers).

``sdl-paper run`` calls :func:`render_page` on the notebook papermill executed: a one-page Jupyter Book is built
in a temporary folder without re-executing anything (every ``{glue:text}`` is filled from the notebook's own
outputs), and the page with its ``_static`` and ``_images`` folders is copied next to the notebook. References
to other chapters of the book stay as plain text on a single page.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from . import chapters

_CONFIG = {
    "title": "sdl-paper run",
    "only_build_toc_files": True,
    "execute": {"execute_notebooks": "off"},
    "parse": {"myst_enable_extensions": ["amsmath", "dollarmath", "colon_fence", "deflist", "substitution"]},
    "bibtex_bibfiles": ["references.bib"],
    "html": {"use_repository_button": False},
    "launch_buttons": {"thebe": False},
    "sphinx": {"extra_extensions": ["sphinx_proof", "sphinx-mathjax-offline"],
               "config": {"bibtex_reference_style": "author_year", "bibtex_default_style": "plain",
                          "numfig": True, "math_numfig": True, "math_eqref_format": "Eq. ({number})",
                          "prf_realtyp_to_countertyp": {"lemma": "theorem", "corollary": "theorem",
                                                        "proposition": "theorem"},
                          "suppress_warnings": ["myst.xref_missing", "ref.ref", "ref.prf"]}},
}


def available() -> bool:
    """Whether Jupyter Book 1 is installed (the ``book`` extra)."""
    import importlib.util
    return importlib.util.find_spec("jupyter_book") is not None


def render_page(notebook: Path, out: Path) -> Path:
    """Build ``notebook`` (an executed .ipynb) into ``out/<stem>.html``, ``out/references.html``, ``out/_static``
    and the page's figures in ``out/_images``; return the page."""
    notebook, out = Path(notebook), Path(out)
    with tempfile.TemporaryDirectory(prefix=".render-") as tmp:
        src = Path(tmp)
        shutil.copy(notebook, src / notebook.name)
        shutil.copy(chapters.NOTEBOOKS / "references.bib", src / "references.bib")
        (src / "_config.yml").write_text(yaml.safe_dump(_CONFIG))
        (src / "references.md").write_text("# References\n\n```{bibliography}\n```\n")
        (src / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": notebook.stem,
                                                      "chapters": [{"file": "references"}]}))
        jb = Path(sys.executable).with_name("jupyter-book")
        proc = subprocess.run([str(jb), "build", "--path-output", str(src / "site"), str(src)],
                              capture_output=True, text=True)
        html = src / "site" / "_build" / "html"
        page = html / f"{notebook.stem}.html"
        if proc.returncode != 0 or not page.is_file():
            raise chapters.ChapterFailed(f"rendering {notebook.name} failed:\n{proc.stdout[-3000:]}"
                                         f"\n{proc.stderr[-2000:]}")
        out.mkdir(parents=True, exist_ok=True)
        for built in (page, html / "references.html"):      # the page cites into references.html
            shutil.copy(built, out / built.name)
        for folder in ("_static", "_images"):             # the theme's files; the page's figures
            if (html / folder).is_dir():
                shutil.copytree(html / folder, out / folder, dirs_exist_ok=True)
    return out / page.name
