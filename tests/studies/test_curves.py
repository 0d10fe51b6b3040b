"""Curves (sdl_paper.studies.curves): peak, step of the peak and final per seed, summaries over seeds, and the
convergence rule with each of its outcomes; a tracked bench run gives the curves."""

import pandas as pd
import pytest

from sdl_paper.studies import curves, experiments as ex, lrb
from sdl_paper.training import train
from sdl_paper.training.callbacks import Tracking, log_steps


def _curves(enc_by_seed, dec_by_seed, steps=(0, 10, 20, 30)):
    rows = []
    for seed, (enc, dec) in enumerate(zip(enc_by_seed, dec_by_seed)):
        rows += [dict(row="r", seed=seed, step=s, M_GT_enc=e, M_GT_dec=d) for s, e, d in zip(steps, enc, dec)]
    return pd.DataFrame(rows)


def test_peak_final_reads_the_peak_its_step_the_end_and_the_decoder_at_both():
    c = _curves([[0.0, 0.5, 0.5, 0.3]], [[0.1, 0.9, 0.95, 1.0]])
    row = curves.peak_final(c, ["row"]).iloc[0]
    assert (row["peak"], row["peak_step"], row["final"], row["final_step"]) == (0.5, 10, 0.3, 30)
    assert (row["paired_at_peak"], row["paired_final"]) == (0.9, 1.0)        # the first of tied peaks


def test_over_seeds_gives_mean_and_standard_error():
    c = _curves([[0.0, 0.2, 0.2, 0.2], [0.0, 0.4, 0.4, 0.4]], [[1.0] * 4] * 2)
    s = curves.over_seeds(curves.peak_final(c, ["row"]), ["row"]).loc["r"]
    assert s["peak"] == pytest.approx(0.3) and s["peak_se"] == pytest.approx(0.1) and s["seeds"] == 2


@pytest.mark.parametrize("enc, dec, status", [
    ([[0.0, 0.3, 0.5, 0.5], [0.0, 0.3, 0.52, 0.52]], [[1.0] * 4] * 2, "converged"),
    ([[0.0, 0.3, 0.5, 0.2], [0.0, 0.3, 0.52, 0.22]], [[1.0] * 4] * 2, "still changing"),
    ([[0.0, 0.3, 0.5, 0.5], [0.0, 0.3, 0.52, 0.52]], [[0.2, 0.5, 0.7, 0.9]] * 2, "not converged"),
    ([[0.0, 0.3, 0.5, 0.5]], [[1.0] * 4], "too few seeds"),
])
def test_convergence_rule_has_each_outcome(enc, dec, status):
    got = curves.convergence(_curves(enc, dec), ["row"], floor=0.0).iloc[0]
    assert got["status"] == status, got.to_dict()


def test_convergence_measures_the_last_third_however_sparse_the_tracked_steps():
    # log-spaced steps put only the last step in the last third: the change is measured from step 30 (<= 2/3 of
    # 99), so the late fall counts
    c = _curves([[0.0, 0.5, 0.5, 0.1], [0.0, 0.52, 0.52, 0.12]], [[1.0] * 4] * 2, steps=(0, 10, 30, 99))
    got = curves.convergence(c, ["row"]).iloc[0]
    assert got["status"] == "still changing" and got["from_step"] == 30


def test_convergence_plateau_level_is_optional():
    c = _curves([[0.0, 0.3, 0.5, 0.5], [0.0, 0.3, 0.52, 0.52]], [[0.2, 0.5, 0.9, 0.9]] * 2)   # stable at 0.9
    assert curves.convergence(c, ["row"]).iloc[0]["status"] == "converged"
    assert curves.convergence(c, ["row"], plateau=0.95).iloc[0]["status"] == "not converged"


def test_curve_steps_reach_into_the_last_third():
    steps = curves.curve_steps(6000)
    assert steps[0] == 0 and steps[-1] == 5999 and len([s for s in steps if s > 4000]) >= 3
    assert set(log_steps(6000, 20)) <= set(steps)


def test_judged_joins_peak_final_and_status():
    c = _curves([[0.0, 0.6, 0.5, 0.5], [0.0, 0.4, 0.52, 0.52]], [[1.0] * 4] * 2)
    j = curves.judged(c, ["row"]).iloc[0]
    assert j["peak"] == pytest.approx(0.56) and j["final"] == pytest.approx(0.51) and j["status"] == "converged"


def test_convergence_floor_keeps_identical_seeds_from_counting_every_move():
    c = _curves([[0.0, 0.5, 0.5, 0.52]] * 3, [[1.0] * 4] * 3)        # spread 0 over identical seeds
    assert curves.convergence(c, ["row"]).iloc[0]["status"] == "still changing"
    assert curves.convergence(c, ["row"], floor=1 / 42).iloc[0]["status"] == "converged"


def test_a_tracked_bench_run_gives_curves_at_log_spaced_steps():
    wld = lrb.world(8, 10, 0.8, 0.5, seed=0)
    gt = wld.view([0], [0])
    cfg = lrb.row_config("TopK SAE", "theory", k=2, steps=40, batch_size=32, lr=0.03)
    steps = log_steps(cfg.steps, 6)
    state = train(gt, cfg, 16, [0, 1], progress=False, callback=Tracking(steps=steps, measure=lrb.BenchMetrics(gt)))
    c = ex.tracked_frame(state, seeds=[0, 1], row="TopK SAE")
    assert sorted(c["step"].unique()) == list(steps) and len(c) == 2 * len(steps)
    assert {"M_GT_enc", "M_GT_dec", "M_IP_enc", "MCC", "EV", "L0", "dead"} <= set(c.columns)
    final = c[c["step"] == steps[-1]].reset_index(drop=True)
    assert final.equals(pd.DataFrame([dict(step=steps[-1], seed=s, **m, row="TopK SAE") for s, m in
                                      zip([0, 1], lrb.evaluate(state, gt, cfg))]))
    assert c["L0"].max() <= 2.0                                   # TopK with k = 2


def test_convergence_catches_a_rise_and_fall_inside_the_last_third():
    steps = (0, 10, 70, 80, 90, 99)
    c = _curves([[0.0, 0.2, 0.5, 0.9, 0.5, 0.5], [0.0, 0.2, 0.52, 0.92, 0.52, 0.52]], [[1.0] * 6] * 2, steps=steps)
    got = curves.convergence(c, ["row"], floor=1 / 42).iloc[0]
    assert got["status"] == "still changing" and got["enc_change"] == pytest.approx(0.4)
