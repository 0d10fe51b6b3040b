"""Neuron resampling: the dead-latent window, the event log (the analysis: tests/studies/test_remedies.py)."""
from functools import lru_cache

import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.studies import experiments as ex
from sdl_paper.model import Config
from sdl_paper.training import dead_mask, init_state, train
from sdl_paper.training import resampling as R


@lru_cache
def _gt(S=0.9):
    """An SAE view (W_r = W_p) of 12 random unit directions in 8 dimensions (no interference bound needed)."""
    W = torch.randn(8, 12, generator=torch.Generator().manual_seed(0))
    W = W / W.norm(dim=0, keepdim=True)
    return ground_truth.GroundTruth(W, W, ground_truth.Coefficients(12, S))


def test_dead_mask_counts_exactly_the_last_w_silent_steps_like_dead_by_window():
    gt = _gt(0.97)
    cfg = Config.theory(method="topk", k=1, steps=40, batch_size=8, log_every=40)
    masks = {}

    def keep(state, terms):
        masks[state.step] = {w: dead_mask(state, w).clone() for w in (1, 3, 7)}

    rec = ex.Recorder(gt, cfg)
    train(gt, cfg, 16, [0, 1], progress=False, callback=lambda s, t: (rec(s, t), keep(s, t)))
    f = rec.firing()
    for s in (10, 25, 40):
        for w in (1, 3, 7):
            by_record = ~f[:s][-w:].any(0)       # silent in each of the last w steps
            assert torch.equal(masks[s][w], by_record), (s, w)
    assert bool(masks[40][7].any()) and not bool(masks[40][7].all())   # the comparison is not vacuous


def test_a_latent_that_fired_is_dead_after_exactly_w_silent_steps():
    state = init_state(1, 4, 3, 4, Config.theory(), [0])
    state.last_fired[0] = torch.tensor([5, -1, 9])        # fired at step 5; never; at step 9
    state.step = 10                                       # steps 0..9 are done
    assert dead_mask(state, 4).tolist() == [[True, True, False]]   # 4 silent steps (6..9): dead
    assert dead_mask(state, 5).tolist() == [[False, True, False]]  # 4 < 5 for the first
    assert dead_mask(state, 10).tolist() == [[False, True, False]]  # never fired: 10 silent steps
    assert dead_mask(state, 11).tolist() == [[False, False, False]]


def test_firing_threshold_is_the_kth_largest_other_preactivation():
    z = torch.tensor([[5.0, 4.0, 3.0, 1.0], [-1.0, -2.0, 0.5, -3.0]])
    own = torch.tensor([0, 3])
    cfg = Config.theory(method="topk", k=2)
    # row 0: others 4, 3, 1 -> 2nd largest 3; row 1: others -1, -2, 0.5 -> 2nd largest -1, clamped to 0
    assert R.firing_threshold(z, own, cfg).tolist() == [3.0, 0.0]
    assert R.firing_threshold(z, own, Config.theory(method="relu")).tolist() == [0.0, 0.0]


def _dead_state(cfg, gt, n_q=16):
    state = init_state(1, gt.n_p, n_q, gt.n_r, cfg, [0])
    state.step = 50
    dead = torch.zeros(n_q, dtype=torch.bool)
    dead[[1, 4, 9]] = True
    state.last_fired[0] = torch.where(dead, torch.tensor(-1), torch.tensor(49))
    return state, dead


@pytest.mark.parametrize("scale", [0.2, 3.0])
def test_resample_scale_sets_the_encoder_norm_and_the_log_matches_a_direct_encoding(scale):
    gt = _gt()
    cfg = Config.theory(method="topk", k=2, dead_window=10, resample_scale=scale)
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
    cfg = Config.theory(method="topk", k=3, dead_window=10, resample_scale=2.0)
    state, dead = _dead_state(cfg, gt)
    state.params["W_E"][0] /= state.params["W_E"][0].norm(dim=1, keepdim=True)  # equal alive norms
    R.resample(state, gt, cfg)
    # own pre-activation 2 |x| beats every alive latent's (<= |x|); only the 2 other resampled latents can beat
    # it (two inputs of the same feature give them the same row), so with k = 3 every one is in the top k
    assert all(state.resampled[0]["fires_own"])
    cfg_small = Config.theory(method="topk", k=3, dead_window=10, resample_scale=1e-3)
    state, _ = _dead_state(cfg_small, gt)
    R.resample(state, gt, cfg_small)                                  # a tiny row loses to the alive ones
    assert not any(state.resampled[0]["fires_own"])
