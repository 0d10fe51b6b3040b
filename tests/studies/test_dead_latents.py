"""The dead-neurons chapter's analyses on a tiny world: one training shared by equal settings, the per-run tables
(TopK floor, excess share, coverage) and the exact zero gradients at pattern-dead latents."""
import math

import torch

import pandas as pd
import pytest

from sdl_paper.data import ground_truth
from sdl_paper.model import Config
from sdl_paper.studies import dead_latents as dl
from sdl_paper.studies import experiments as ex
from sdl_paper.theory import instantiations

K_TOP, N, N_Q = 2, 12, 32  # floor max(n_q - k n, 0) = 8
BASE = dict(method="topk", k=K_TOP, steps=20, batch_size=32, lr=0.01, log_every=5, dead_window=5, track_every=5)


@pytest.fixture(scope="module")
def world():
    gt = instantiations.get("SAE").view(ground_truth.make_world(8, N, 0.9, 0.4, n_layers=1, seed=0))
    cases = {("n_q / n", 1.0): (gt, Config.theory(**BASE), N), ("n_q / n", N_Q / N): (gt, Config.theory(**BASE), N_Q)}
    return gt, cases, ex.run_cases(cases, [0, 1], record_every=5)


def test_train_distinct_trains_each_signature_once_and_shares_the_run(monkeypatch):
    calls = []
    monkeypatch.setattr(dl.ex, "run_cases", lambda cases, seeds, **kw: calls.append(list(cases)) or
                        {key: object() for key in cases})
    cases = {"a": 1, "b": 2, "c": 3}
    runs = dl.train_distinct(cases, {"a": 0, "b": 1, "c": 0}, [0])
    assert calls == [["a", "b"]]
    assert runs["c"] is runs["a"] and runs["b"] is not runs["a"] and list(runs) == ["a", "b", "c"]


def test_sweep_frame_floor_and_windows(world):
    gt, cases, runs = world
    r = dl.sweep_frame(runs, cases, [0, 1], K_TOP, N, [1, 5, 20])
    assert len(r) == 4 and list(r.seed) == [0, 1, 0, 1]
    assert list(r.floor) == [0.0, 0.0, 8 / 32, 8 / 32]
    assert (r["pattern-dead"] >= r["floor"] - 1e-12).all()   # TopK_k: at most k n latents have a pattern
    assert (r["window-dead"] == r["dead (w=5)"]).all()         # the run's dead window is 5
    assert (r["dead (w=1)"] >= r["dead (w=5)"]).all() and (r["dead (w=5)"] >= r["dead (w=20)"]).all()


def test_floor_frame_excess_share_and_coverage(world):
    gt, cases, runs = world
    f = dl.floor_frame({("TopK", k[1]): v for k, v in runs.items()},
                       {("TopK", k[1]): v for k, v in cases.items()}, [0, 1], K_TOP, N)
    n_q = f["n_q / n"].map({1.0: N, N_Q / N: N_Q})
    fl = f.floor * n_q
    assert ((f["pattern-dead"] * n_q - fl) / (n_q - fl) - f["excess share"]).abs().max() < 1e-12
    assert (f["excess share"] >= 0).all() and (f["pattern-dead, fires"] <= f["pattern-dead"]).all()
    c = dl.coverage_frame(runs, cases, [0, 1], K_TOP, N)
    assert (c["dead beyond floor"] >= 0).all()
    assert (c["dead beyond floor"] == (f["pattern-dead"] * n_q - fl).round().astype(int)).all()
    assert ((c["polysemantic"] >= 0) & (c["features without a monosemantic latent"] <= N)).all()


def test_floor_summary_by_hand():
    floors = pd.DataFrame({
        "method": ["TopK"] * 4 + ["ReLU"] * 2, "n_q / n": [1, 1, 4, 4, 1, 4],
        "floor": [0, 0, 0.5, 0.5, 0, 0], "pattern-dead": [0.1, 0.1, 0.6, 0.9, 0.2, 0.4],
        "excess share": [0.1, 0.1, 0.2, 0.8, 0.2, 0.4], "pattern-dead, fires": [0, 0, 0.3, 0.3, 0, 0]})
    s = dl.floor_summary(floors)
    assert s["share_floor"] == pytest.approx(1.0 / 1.5) and s["mixed_share"] == pytest.approx(0.6 / 1.5)
    assert (s["excess_lo"], s["excess_hi"]) == pytest.approx((0.1, 0.5))
    assert (s["relu_dead_lo"], s["relu_dead_hi"]) == pytest.approx((0.2, 0.4))
    assert s["excess_real"] is False                           # sem 0 at width 1, 0.3 at width 4: 0.5 - 0.6 < 0
    assert math.isnan(dl.floor_summary(floors[floors.floor == 0])["share_floor"])


def test_gradient_checks_are_exactly_zero_at_pattern_dead_latents(world):
    gt, _, _ = world
    checks = dl.gradient_checks(gt, BASE, N_Q, [0, 1])
    assert len(checks) == 10 * 2 and sorted(set(checks.step)) == list(range(0, 20, 2))
    assert (checks["pattern-dead"] >= N_Q - K_TOP * N).all()   # the floor: some latents are always dead
    assert (checks["max |dL~/dW_E| on them"] == 0).all() and (checks["max |dL~/dW_D| on them"] == 0).all()
    assert (checks["max |batch grad| on silent"] == 0).all() and (checks["min |dL~/dW_E| on live"] > 0).all()


def test_revival_frame_counts_latents_that_fire_or_regain_a_pattern_after_being_dead():
    from types import SimpleNamespace
    firing = torch.zeros(10, 1, 3, dtype=torch.bool)
    firing[:, 0, 0] = True                        # latent 0 fires every step: never dead
    firing[[0, 1, 2, 8], 0, 1] = True             # latent 1: silent at steps 3-7, fires again at 8
    firing[0, 0, 2] = True                        # latent 2: fires once, then never
    rec = SimpleNamespace(firing=lambda: firing, pattern_steps=[0, 5, 9],
                          pattern_sizes=[torch.tensor([[1, 1, 0]]), torch.tensor([[1, 0, 0]]),
                                         torch.tensor([[1, 1, 0]])])
    cases = {("lr", 0.1): (None, Config.theory(dead_window=3), 3)}
    r = dl.revival_frame({("lr", 0.1): (None, rec)}, cases, [7]).iloc[0]
    assert (r["factor"], r["value"], r["seed"]) == ("lr", 0.1, 7)
    # window (3 steps) at checkpoint 5: latents 1 and 2 are dead, latent 1 fires later (the checkpoint at step 0
    # has too short a history for the window)
    assert (r["window_dead"], r["window_fire_later"], r["window_revived"]) == (2, 1, 0.5)
    # pattern: latent 2 at step 0, latents 1 and 2 at step 5; latent 1 fires later and has a pattern at the end
    assert (r["pattern_dead"], r["pattern_fire_later"], r["pattern_back"]) == (3, 1, 1)
    assert r["pattern_revived"] == 1 / 3
