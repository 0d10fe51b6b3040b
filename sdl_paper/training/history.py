"""A run's training curves: ``state.history`` (one entry per logged step, one value per model; written by
:class:`~sdl_paper.training.callbacks.BatchLog`) as a table, and in one call as a figure.

    state = sdl_paper.train(x, cfg, n_q, [0])
    sdl_paper.training.history.plot(state)          # loss, explained variance, L0 and dead fraction over steps
"""
from __future__ import annotations

METRICS = ("loss", "penalty", "aux", "total", "nmse", "EV", "L0", "window_dead", "lr")
PLOTTED = ("loss", "EV", "L0", "window_dead")
LABELS = {"loss": "reconstruction error (batch)", "nmse": "normalised MSE", "EV": "explained variance",
          "L0": "active latents per sample (L0)", "window_dead": "dead fraction (window)", "lr": "learning rate"}


def frame(state):
    """``state.history`` as a pandas DataFrame: one row per logged step and model (``step``, ``model``, ``seed``
    and every metric the entries hold, see :data:`METRICS`)."""
    import pandas as pd

    seeds = list(getattr(state, "seeds", None) or [])
    rows = []
    for entry in (e for e in state.history if "loss" in e):     # skip notes such as {"stopped": ...}
        keys = [k for k in METRICS if k in entry]
        for m in range(len(entry["loss"])):
            rows.append({"step": entry["step"], "model": m, "seed": seeds[m] if m < len(seeds) else None,
                         **{k: entry[k][m] for k in keys}})
    return pd.DataFrame(rows)


def plot(state, metrics=PLOTTED, models=None):
    """The training curves of ``state`` (one panel per metric, one line per model), returned as a matplotlib
    figure. ``metrics``: names of :data:`METRICS` that the history holds; ``models``: indices (default all)."""
    import matplotlib.pyplot as plt

    table = frame(state)
    if table.empty:
        raise ValueError("this state has no logged steps (history is empty): train with log_every <= steps")
    missing = [m for m in metrics if m not in table]
    if missing:
        raise ValueError(f"metrics {missing} are not in this history; it holds {[m for m in METRICS if m in table]}")
    models = sorted(table["model"].unique()) if models is None else list(models)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for m in models:
            part = table[table["model"] == m]
            ax.plot(part["step"], part[metric], lw=1.2, label=f"model {m}")
        ax.set(xlabel="step", title=LABELS.get(metric, metric))
        if metric in ("loss", "nmse", "lr"):
            ax.set_yscale("log")
        elif metric in ("L0", "window_dead"):        # counts and shares: from 0, so a TopK L0 reads as flat
            ax.set_ylim(bottom=0, top=1.1 * max(float(table[metric].max()), 1e-3))
        if metric == "window_dead":
            _dead_window(ax, (state.config or {}).get("dead_window"), int(table["step"].max()))
    if len(models) > 1:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _dead_window(ax, window: int | None, last: int) -> None:
    """Name the window in the dead fraction's title and shade the steps before one window has passed, where no
    latent can be dead yet (the 0 there is not a measurement)."""
    if window:
        ax.set_title(f"dead fraction (no firing in {window} steps)")
        ax.axvspan(0, min(window, last), color="0.9", lw=0, zorder=0)
