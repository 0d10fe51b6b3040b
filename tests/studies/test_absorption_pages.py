"""The absorption chapter's control table on a hand-made table of two seeds."""
import pandas as pd
import pytest

from sdl_paper.studies import absorption_pages as ap


def frames(ctrl_full=(0.0, 0.01)):
    rows, pairs = [], []
    for m, strong, weak in [("ReLU + L1", 0.3, 0.1), ("TopK", 2, 4)]:
        for control in (False, True):
            for seed, full in enumerate((0.5, 0.7) if not control else ctrl_full):
                for pressure, rho in [(strong, 0.9), (weak, 0.9), (strong, 0.5)]:
                    f = full if (pressure, rho) == (strong, 0.9) else 0.99   # other cases must not be read
                    rows.append(dict(method=m, world="trees", pressure=pressure, rho=rho, control=control,
                                     seed=seed, full=f, silent=0.2 if control else 0.6))
                    pairs.append(dict(method=m, world="trees", pressure=pressure, rho=rho, control=control,
                                      parent_in_child=(0.1 if control else 0.8) if f != 0.99 else -1.0))
    return pd.DataFrame(pairs), pd.DataFrame(rows)


def test_control_table_reads_the_strongest_pressure_at_rho_hi():
    pairs, per_seed = frames()
    out = ap.control_table(pairs, per_seed, 0.9, [0.1, 0.3], [2, 4], ["trees"])
    t = out["table"]
    assert list(t.index) == [("ReLU + L1", "trees"), ("TopK", "trees")]
    assert t["full, hierarchy"].tolist() == pytest.approx([0.6, 0.6])
    assert t["se"].tolist() == pytest.approx([0.1, 0.1])                # std 0.1414 / sqrt 2
    assert t["full, control"].tolist() == pytest.approx([0.005, 0.005])
    assert t["parent silent, control"].tolist() == pytest.approx([0.2, 0.2])
    assert t["parent in child"].tolist() == pytest.approx([0.8, 0.8])
    assert t["control"].tolist() == pytest.approx([0.1, 0.1])
    assert out["near_zero"] is True and out["every_seed"] is True


def test_control_table_flags_a_control_that_absorbs():
    pairs, per_seed = frames(ctrl_full=(0.0, 0.75))                    # seed 1: control above its hierarchy
    out = ap.control_table(pairs, per_seed, 0.9, [0.1, 0.3], [2, 4], ["trees"])
    assert out["near_zero"] is False and out["every_seed"] is False
