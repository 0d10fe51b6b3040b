"""Neuron resampling: the dead-latent window, the event log and the analysis helpers of sdl_paper.engine.resampling."""
from functools import lru_cache

import pandas as pd
import pytest
import torch

from sdl_paper.sources import ground_truth
from sdl_paper.engine import experiments as ex, resampling as R, trainer as T


@lru_cache
def _gt(S=0.9):
    """An SAE view (W_r = W_p) of 12 random unit directions in 8 dimensions (no interference bound needed)."""
    W = torch.randn(8, 12, generator=torch.Generator().manual_seed(0))
    W = W / W.norm(dim=0, keepdim=True)
    return ground_truth.GroundTruth(W, W, ground_truth.Coefficients(12, S))


def test_dead_mask_counts_exactly_the_last_w_silent_steps_like_dead_by_window():
    gt = _gt(0.97)
    cfg = T.Config(method="topk", k=1, steps=40, batch_size=8, log_every=40)
    masks = {}

    def keep(state, terms):
        masks[state.step] = {w: T.dead_mask(state, w).clone() for w in (1, 3, 7)}

    rec = ex.Recorder(gt, cfg)
    T.train(gt, cfg, 16, [0, 1], progress=False, callback=lambda s, t: (rec(s, t), keep(s, t)))
    f = rec.firing()
    for s in (10, 25, 40):
        for w in (1, 3, 7):
            by_record = ~f[:s][-w:].any(0)       # silent in each of the last w steps
            assert torch.equal(masks[s][w], by_record), (s, w)
    assert bool(masks[40][7].any()) and not bool(masks[40][7].all())   # the comparison is not vacuous


def test_a_latent_that_fired_is_dead_after_exactly_w_silent_steps():
    state = T.init_state(1, 4, 3, 4, T.Config(), [0])
    state.last_fired[0] = torch.tensor([5, -1, 9])        # fired at step 5; never; at step 9
    state.step = 10                                       # steps 0..9 are done
    assert T.dead_mask(state, 4).tolist() == [[True, True, False]]   # 4 silent steps (6..9): dead
    assert T.dead_mask(state, 5).tolist() == [[False, True, False]]  # 4 < 5 for the first
    assert T.dead_mask(state, 10).tolist() == [[False, True, False]]  # never fired: 10 silent steps
    assert T.dead_mask(state, 11).tolist() == [[False, False, False]]


def test_firing_threshold_is_the_kth_largest_other_preactivation():
    z = torch.tensor([[5.0, 4.0, 3.0, 1.0], [-1.0, -2.0, 0.5, -3.0]])
    own = torch.tensor([0, 3])
    cfg = T.Config(method="topk", k=2)
    # row 0: others 4, 3, 1 -> 2nd largest 3; row 1: others -1, -2, 0.5 -> 2nd largest -1, clamped to 0
    assert R.firing_threshold(z, own, cfg).tolist() == [3.0, 0.0]
    assert R.firing_threshold(z, own, T.Config(method="relu")).tolist() == [0.0, 0.0]


def _dead_state(cfg, gt, n_q=16):
    state = T.init_state(1, gt.n_p, n_q, gt.n_r, cfg, [0])
    state.step = 50
    dead = torch.zeros(n_q, dtype=torch.bool)
    dead[[1, 4, 9]] = True
    state.last_fired[0] = torch.where(dead, torch.tensor(-1), torch.tensor(49))
    return state, dead


@pytest.mark.parametrize("scale", [0.2, 3.0])
def test_resample_scale_sets_the_encoder_norm_and_the_log_matches_a_direct_encoding(scale):
    gt = _gt()
    cfg = T.Config(method="topk", k=2, dead_window=10, resample_scale=scale)
    state, dead = _dead_state(cfg, gt)
    alive_norm = state.params["W_E"][0][~dead].norm(dim=1).mean()
    assert R.resample(state, gt, cfg) == [3]
    W_E = state.params["W_E"][0]
    assert torch.allclose(W_E[dead].norm(dim=1), scale * alive_norm.expand(3), rtol=1e-5)
    (e,) = state.resampled
    assert e["latents"] == [1, 4, 9] and e["step"] == 50
    # the logged pre-activation is the row's norm times the input's: re-derive the input from the row
    x_dirs = W_E[dead] / W_E[dead].norm(dim=1, keepdim=True)
    z_all = torch.tensor(e["z_own"])[:, None] / (scale * alive_norm) * x_dirs @ W_E.T  # (3, n_q)
    z_all[torch.arange(3), torch.tensor(e["latents"])] = torch.tensor(e["z_own"])
    need = R.firing_threshold(z_all, torch.tensor(e["latents"]), cfg)
    assert torch.allclose(need, torch.tensor(e["z_needed"]), rtol=1e-4, atol=1e-6)
    assert e["fires_own"] == [bool(a > b) for a, b in zip(e["z_own"], e["z_needed"])]


def test_a_large_encoder_scale_makes_every_resampled_topk_latent_fire_on_its_own_input():
    gt = _gt()
    cfg = T.Config(method="topk", k=3, dead_window=10, resample_scale=2.0)
    state, dead = _dead_state(cfg, gt)
    state.params["W_E"][0] /= state.params["W_E"][0].norm(dim=1, keepdim=True)  # equal alive norms
    R.resample(state, gt, cfg)
    # own pre-activation 2 |x| beats every alive latent's (<= |x|); only the 2 other resampled latents can beat
    # it (two inputs of the same feature give them the same row), so with k = 3 every one is in the top k
    assert all(state.resampled[0]["fires_own"])
    cfg_small = T.Config(method="topk", k=3, dead_window=10, resample_scale=1e-3)
    state, _ = _dead_state(cfg_small, gt)
    R.resample(state, gt, cfg_small)                                  # a tiny row loses to the alive ones
    assert not any(state.resampled[0]["fires_own"])


def test_revivals_reads_came_alive_and_alive_at_the_end_from_the_firing_record():
    gt = _gt()
    cfg = T.Config(method="relu", dead_window=3, remedy="resample", resample_at=(5,), steps=12, batch_size=8)
    state = T.init_state(1, gt.n_p, 6, gt.n_r, cfg, [0])
    state.step = 5
    state.last_fired[0] = torch.tensor([-1, 4, 4, -1, 4, 4])     # latents 0 and 3 dead at step 5
    R.resample(state, gt, cfg)
    firing = torch.zeros(12, 1, 6, dtype=torch.bool)
    firing[6, 0, 0] = True      # latent 0 fires right after: came alive, then silent to the end
    firing[10, 0, 3] = True     # latent 3 fires only late: not within 3 steps, alive at the end
    t = R.revivals(state, firing, gt, window=3, tau=0.95).set_index("latent")
    assert t.loc[0, "came_alive"] and not t.loc[0, "alive_end"]
    assert not t.loc[3, "came_alive"] and t.loc[3, "alive_end"]
    assert t["last"].all() and not t.loc[0, "recovers"]          # a latent dead at the end recovers nothing


def test_relative_change_and_spike_ratio():
    final = pd.DataFrame({"none": [1.0, 2.0, 4.0], "a": [0.5, 2.0, 5.0]}, index=[0, 1, 2])
    row = R.relative_change(final).loc["a"]
    assert row["change"] == pytest.approx((-0.5 + 0 + 0.25) / 3) and row["lower"] == 1
    hist = pd.DataFrame({"step": [0, 1, 2, 3] * 2, "loss": [1, 1, 3, 3, 2, 2, 2, 2], "seed": [0] * 4 + [1] * 4,
                         "remedy": "x"})
    r = R.spike_ratio(hist, 2, 2)
    assert r.loc[("x", 0)] == 3.0 and r.loc[("x", 1)] == 1.0
