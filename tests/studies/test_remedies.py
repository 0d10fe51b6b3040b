"""Analysis of remedies (sdl_paper.studies.remedies): revivals read from the firing record, final-loss changes
and loss spikes."""
import pandas as pd
import pytest
import torch

from sdl_paper.model import Config
from sdl_paper.training import init_state
from sdl_paper.data import ground_truth
from sdl_paper.studies import remedies as rm
from sdl_paper.training import resampling as R


def _gt(S=0.9):
    """An SAE view (W_r = W_p) of 12 random unit directions in 8 dimensions."""
    W = torch.randn(8, 12, generator=torch.Generator().manual_seed(0))
    W = W / W.norm(dim=0, keepdim=True)
    return ground_truth.GroundTruth(W, W, ground_truth.Coefficients(12, S))


def test_revivals_reads_came_alive_and_alive_at_the_end_from_the_firing_record():
    gt = _gt()
    cfg = Config.theory(method="relu", dead_window=3, remedy="resample", resample_at=(5,), steps=12, batch_size=8)
    state = init_state(1, gt.n_p, 6, gt.n_r, cfg, [0])
    state.step = 5
    state.last_fired[0] = torch.tensor([-1, 4, 4, -1, 4, 4])     # latents 0 and 3 dead at step 5
    R.resample(state, gt, cfg)
    firing = torch.zeros(12, 1, 6, dtype=torch.bool)
    firing[6, 0, 0] = True      # latent 0 fires right after: came alive, then silent to the end
    firing[10, 0, 3] = True     # latent 3 fires only late: not within 3 steps, alive at the end
    t = rm.revivals(state, firing, gt, window=3, tau=0.95).set_index("latent")
    assert t.loc[0, "came_alive"] and not t.loc[0, "alive_end"]
    assert not t.loc[3, "came_alive"] and t.loc[3, "alive_end"]
    assert t["last"].all() and not t.loc[0, "recovers"]          # a latent dead at the end recovers nothing


def test_relative_change_and_spike_ratio():
    final = pd.DataFrame({"none": [1.0, 2.0, 4.0], "a": [0.5, 2.0, 5.0]}, index=[0, 1, 2])
    row = rm.relative_change(final).loc["a"]
    assert row["change"] == pytest.approx((-0.5 + 0 + 0.25) / 3) and row["lower"] == 1
    hist = pd.DataFrame({"step": [0, 1, 2, 3] * 2, "loss": [1, 1, 3, 3, 2, 2, 2, 2], "seed": [0] * 4 + [1] * 4,
                         "remedy": "x"})
    r = rm.spike_ratio(hist, 2, 2)
    assert r.loc[("x", 0)] == 3.0 and r.loc[("x", 1)] == 1.0
