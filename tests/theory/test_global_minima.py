import numpy as np
import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory import activations as A, global_minima as gm
from sdl_paper.theory.activations import make_activation

RELU = make_activation("relu")


def _eye_world(n=4):
    eye = torch.eye(n, dtype=torch.float64)
    return ground_truth.GroundTruth(eye, eye, ground_truth.Coefficients(n, 0.9))


def _negative_world():
    """e_1, e_2 and a third feature with negative interference only (M = 0)."""
    t = torch.tensor(0.7, dtype=torch.float64)
    W = torch.stack([torch.tensor([1.0, 0.0, -t.cos()]), torch.tensor([0.0, 1.0, -t.sin()])]).double()
    return ground_truth.GroundTruth(W, W, ground_truth.Coefficients(3, 0.9))


def test_literal_topk_keeps_negatives_and_relu_topk_does_not():
    z = torch.tensor([[1.0, -0.2, -0.5]])
    assert torch.equal(A.LiteralTopK(2)(z), torch.tensor([[1.0, -0.2, 0.0]]))
    assert torch.equal(make_activation("topk:2")(z), torch.tensor([[1.0, 0.0, 0.0]]))


def test_jumprelu_above_one_breaks_the_bound_on_orthonormal_features():
    gt = _eye_world()
    bad = gm.ground_truth_check(gt, make_activation("jumprelu:1.5"))
    assert not bad["keeps_own"] and bad["bound (paper)"] == 0
    assert abs(bad["L~"] - gt.M_d().sum().item()) < 1e-12
    good = gm.ground_truth_check(gt, make_activation("jumprelu:0.5"))
    assert good["keeps_own"] and good["drops_negative"] and good["L~"] == 0


def test_keeping_negatives_breaks_the_bound_and_relu_respects_it():
    gt = _negative_world()
    lit = gm.ground_truth_check(gt, A.LiteralTopK(2))
    assert not lit["drops_negative"] and lit["bound (paper)"] == 0 < lit["L~"]
    relu = gm.ground_truth_check(gt, RELU)
    assert relu["drops_negative"] and relu["L~"] < 1e-30
    w = torch.randn(16, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = w / w.norm(dim=0)
    c = gm.ground_truth_check(ground_truth.GroundTruth(w, w, ground_truth.Coefficients(24, 0.99)), RELU)
    assert c["keeps_own"] and c["drops_negative"] and 0 < c["resid_max"] <= c["resid_bound"]
    assert 0 < c["L~"] <= c["bound (ours)"] <= c["bound (paper)"]


def test_interference_profile_counts_positive_neighbours():
    W = torch.tensor([[1.0, 0.6, 0.0], [0.0, 0.8, 1.0]], dtype=torch.float64)   # cosines 0.6, 0, 0.8
    p = gm.interference_profile(W)
    assert abs(p["neighbours"] - 4 / 3) < 1e-12 and abs(p["mean_cos"] - 0.7) < 1e-12 and p["M"] == 0.8


def test_local_slopes_recover_power_laws():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert np.allclose(gm.local_slopes(x, x ** 2), 2)
    assert np.allclose(gm.local_slopes(x, np.r_[x[:2] ** 3, 8 * x[2:] / 2]), [3, 1, 1])
