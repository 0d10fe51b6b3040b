import matplotlib
import pandas as pd
import pytest

from sdl_paper.book import plots

matplotlib.use("Agg")


def _curves(values):
    return pd.DataFrame([{"step": s, "seed": seed, "value": v, "row": r, "F1": 0.1 * s, "MCC": 0.05 * s}
                         for v in values for r in ("a", "b") for seed in (0, 1) for s in (0, 1, 5)])


def test_curve_grid_one_row_per_metric_one_column_per_value():
    fig, axes = plots.curve_grid(_curves([1e-3, 3e-3]), metrics=("F1", "MCC"))
    assert axes.shape == (2, 2) and axes[0, 1].get_title() == "lr = 0.003"
    assert axes[0, 1].get_legend() is not None and axes[1, 0].get_legend() is None


def test_curve_grid_across_puts_the_metrics_side_by_side_and_needs_one_value():
    fig, axes = plots.curve_grid(_curves([3e-3]), metrics=("F1", "MCC"), across=True)
    assert axes.shape == (1, 2) and [ax.get_title() for ax in axes[0]] == ["F1", "MCC"]
    assert axes[0, 1].get_legend() is not None and len(axes[0, 0].get_lines()) >= 2
    with pytest.raises(ValueError, match="one value of 'value'"):
        plots.curve_grid(_curves([1e-3, 3e-3]), metrics=("F1",), across=True)
