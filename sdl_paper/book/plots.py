"""One plotting style for every figure of the book. Functions draw results; they never train or sample."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

PALETTE = "colorblind"


def use_style() -> None:
    """The house style: seaborn 'whitegrid', colour-blind palette, compact fonts, 120 dpi."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.95,
                  rc={"figure.dpi": 120, "savefig.dpi": 120, "figure.figsize": (6.4, 3.6),
                      "axes.titlesize": "medium", "figure.autolayout": True})


def figure(ncols: int = 1, width: float = 6.4, height: float = 3.6, **kwargs):
    """A figure with ``ncols`` axes side by side in the house style; returns (fig, axes)."""
    use_style()
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False, **kwargs)
    return fig, (axes[0, 0] if ncols == 1 else axes[0])


def interference_histogram(W: torch.Tensor, M: float, ax=None):
    """Histogram of the pairwise cosines <w_i, w_j> (i < j) of the columns of W (d x n), with M marked."""
    if ax is None:
        _, ax = figure()
    G = (W.T @ W).numpy()
    cos = G[np.triu_indices_from(G, k=1)]
    sns.histplot(cos, bins=60, stat="density", ax=ax, color=sns.color_palette(PALETTE)[0])
    ax.axvline(M, color=sns.color_palette(PALETTE)[3], ls="--", label=f"M = {M:g}")
    ax.set(xlabel=r"pairwise cosine $\langle w_p^i, w_p^j\rangle$", ylabel="density")
    ax.legend()
    return ax


def sparse_code(x: torch.Tensor, ax=None, label: str = "x"):
    """Stem plot of one sparse vector x (n,): its non-zero coordinates stand out."""
    if ax is None:
        _, ax = figure()
    x = x.numpy()
    nz = np.flatnonzero(x)
    ax.plot(np.arange(len(x)), x, lw=0.6, color="0.7")
    ax.stem(nz, x[nz], basefmt=" ", linefmt="C0-", markerfmt="C0o")
    ax.set(xlabel="coordinate", ylabel=label, xlim=(-1, len(x)))
    return ax


def verdict_table(rows: list[tuple[str, str]]):
    """A 'prediction versus result' table (pandas Styler, left-aligned, no index) for a chapter's summary."""
    import pandas as pd
    df = pd.DataFrame(rows, columns=["prediction", "result on this data"])
    return df.style.hide(axis="index").set_properties(**{"text-align": "left"}).set_table_styles(
        [{"selector": "th", "props": [("text-align", "left")]}])


def glue_values(values: dict) -> None:
    """Glue each value of ``values`` under its key for the page's prose (``display=False``), as given: pass Python
    floats and ints (a numpy scalar would glue as its repr, ``np.float64(...)``)."""
    from myst_nb import glue

    for key, value in values.items():
        glue(key, value, display=False)


def curve_grid(curves, metrics=("M_GT_enc", "M_GT_dec"), col: str = "value", hue: str = "row",
               col_name: str = "lr", style: str | None = None, across: bool = False):
    """Training curves: one row of axes per metric, one column per value of ``col`` (titled ``col_name = value``
    for a number, the value itself for text), one line per ``hue`` (mean over seeds, band: standard error), steps
    on a log axis; with ``across`` (one value of ``col`` only) the metrics side by side, each titled by its name.
    Returns (fig, axes)."""
    use_style()
    cols = sorted(curves[col].unique())
    if across and len(cols) != 1:
        raise ValueError(f"across=True needs one value of {col!r}; the curves have {len(cols)}")
    shape = (1, len(metrics)) if across else (len(metrics), len(cols))
    fig, axes = plt.subplots(*shape, figsize=(3.7 * shape[1], 2.9 * shape[0]), sharex=True, sharey=True,
                             squeeze=False)
    d = curves.assign(step1=curves["step"] + 1)
    for i, metric in enumerate(metrics):
        for j, v in enumerate(cols):
            ax = axes[0, i] if across else axes[i, j]
            title = (f"{col_name} = {v:g}" if isinstance(v, (int, float)) else str(v)) if i == 0 else ""
            sns.lineplot(data=d[d[col] == v], x="step1", y=metric, hue=hue, style=style, ax=ax,
                         errorbar="se", legend=ax is axes[0, -1])
            ax.set(xscale="log", ylim=(-0.05, 1.05), xlabel="step", ylabel=metric if j == 0 else "",
                   title=metric if across else title)
    if axes[0, -1].get_legend() is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return fig, axes
