"""The resampling chapter's analyses: dead latents at the resampling steps, revivals per seed (a seed that
resampled nothing counts zero) and the loss spike relative to the run without a remedy."""
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.model import Config
from sdl_paper.studies import resampling_effects as rx
from sdl_paper.training import init_state, resampling


def _gt():
    W = torch.randn(8, 12, generator=torch.Generator().manual_seed(0))
    W = W / W.norm(dim=0, keepdim=True)
    return ground_truth.GroundTruth(W, W, ground_truth.Coefficients(12, 0.9))


def _rec(firing):
    return SimpleNamespace(firing=lambda: firing)


def test_dead_at_events_reads_the_window_before_each_step():
    firing = torch.zeros(10, 2, 4, dtype=torch.bool)
    firing[1, 0, :] = True          # seed 0: all fire at step 1, then silent
    firing[6, 1, :2] = True         # seed 1: half fire at step 6
    d = rx.dead_at_events({("A", "none"): (None, _rec(firing))}, ["A"], (4, 8), [5, 6], 3)
    assert list(d.seed) == [5, 6, 5, 6] and list(d.step) == [4, 4, 8, 8]
    assert list(d.dead) == [0.0, 1.0, 1.0, 0.5]   # window [1, 4) and [5, 8)


def test_revival_frames_counts_per_seed_and_fills_a_seed_without_resampling():
    gt = _gt()
    cfg = Config.theory(method="relu", dead_window=3, remedy="resample", resample_at=(5,), steps=12, batch_size=8)
    state = init_state(2, gt.n_p, 6, gt.n_r, cfg, [0, 1])
    state.step = 5
    state.last_fired[0] = torch.tensor([-1, 4, 4, -1, 4, 4])     # seed 10: latents 0 and 3 dead at step 5
    state.last_fired[1] = torch.tensor([4, 4, 4, 4, 4, 4])       # seed 11: nothing to resample
    resampling.resample(state, gt, cfg)
    firing = torch.zeros(12, 2, 6, dtype=torch.bool)
    firing[6, 0, 0] = True       # came alive, then silent
    firing[10, 0, 3] = True      # late: alive at the end only
    runs = {("A", "rep"): (state, _rec(firing)), ("A", "none"): (None, None)}
    cases = {("A", "rep"): (gt, cfg, 6), ("A", "none"): (gt, Config.theory(method="relu"), 6)}
    out = rx.revival_frames(runs, cases, gt, [10, 11], dead_window=3)
    assert len(out["rev"]) == 2 and set(out["rev"].seed) == {10}
    p = out["per_seed"]
    assert list(p.index) == [("A", "rep", 10), ("A", "rep", 11)]
    assert p.loc[("A", "rep", 10), ["resampled", "came_alive", "alive_end"]].tolist() == [2, 0.5, 0.5]
    assert p.loc[("A", "rep", 11), ["resampled", "recovers", "only_one"]].tolist() == [0, 0, 0]
    assert pd.isna(p.loc[("A", "rep", 11), "came_alive"])


def test_spike_frame_divides_by_the_run_without_remedy_and_reads_single_remedies_once():
    steps = list(range(6))
    loss = {"none": [1, 1, 2, 2, 2, 2], "once": [1, 1, 4, 4, 4, 4], "rep": [1, 1, 3, 3, 9, 9]}
    hist = pd.DataFrame([{"setting": "A", "remedy": r, "seed": sd, "step": t, "loss": l[t]}
                         for r, l in loss.items() for sd in (0, 1) for t in steps])
    sp = rx.spike_frame(hist, (2, 4), 2, 1, single=("once",))
    assert sp.loc[("A", "none"), "mean"] == 1.0
    assert sp.loc[("A", "once"), "mean"] == pytest.approx(2.0)                 # 4 / 2 at step 2 only
    assert sp.loc[("A", "rep"), "mean"] == pytest.approx((1.5 + 3.0) / 2)      # (3/2) at 2, (9/3) at 4
    assert sp.loc[("A", "rep"), "sem"] == pytest.approx(0.0)
