import math

import pytest
import torch

from sdl_paper import approximation as ap, data
from sdl_paper.framework import SDL, per_feature_loss, sdl_loss


def _gt(S=0.99, n=20, n_p=12):
    return data.make_world(n_p, n, S, 0.3, n_layers=1, seed=0).view([0], [0])


def test_count_probabilities_are_the_binomial_law():
    probs = ap.count_probabilities(10, 0.8)
    assert torch.isclose(probs.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert math.isclose(probs[1].item(), 10 * 0.2 * 0.8 ** 9, rel_tol=1e-12)
    assert ap.p_multi(10, 0.8) <= math.comb(10, 2) * 0.2 ** 2


def test_conditional_samples_have_the_requested_number_of_active_features():
    x = ap.sample_given_count(_gt(), 2, 3000, torch.Generator().manual_seed(0), k_max=3)
    k = (x > 0).sum(1)
    assert ((k >= 2) & (k <= 3)).all() and (k == 2).float().mean() > 0.9   # K = 2 dominates at S = 0.99


def test_one_feature_term_equals_L_tilde_for_homogeneous_sigma_and_not_for_jumprelu():
    gt = _gt()
    relu = ap.loss_split(SDL(12, 24, activation="relu", seed=1), gt, n_samples=20000)
    assert abs(relu["single"] - relu["L_tilde"]) < 5 * relu["single_se"]
    jump = ap.loss_split(SDL(12, 24, activation="jumprelu:0.5", seed=1), gt, n_samples=20000)
    assert abs(jump["single"] - jump["L_tilde"]) > 5 * jump["single_se"]


def test_the_split_adds_up_to_the_plain_monte_carlo_loss():
    gt = _gt(S=0.95)
    model = SDL(12, 24, activation="topk:2", seed=2)
    split = ap.loss_split(model, gt, n_samples=40000)
    _, x_p, x_r = gt.sample(400_000, torch.Generator().manual_seed(5))
    mc = sdl_loss(model, x_p, x_r).item()
    assert abs(mc - split["L_SDL"]) / split["L_SDL"] < 0.03
    assert math.isclose(split["L_tilde"], per_feature_loss(model, gt).item())


def test_gap_has_slope_two_as_S_tends_to_one():
    gt, model = _gt(), SDL(12, 24, activation="relu", seed=3)
    ps = [1e-4, 3e-4, 1e-3]
    gaps = [ap.loss_split(model, gt.with_sparsity(1 - p), n_samples=20000, seed=i)["gap"] for i, p in enumerate(ps)]
    assert abs(ap.loglog_slope(ps, gaps) - 2) < 0.1


def test_conditional_sampling_needs_one_sparsity():
    gt = data.GroundTruth(torch.eye(3), torch.eye(3), data.Coefficients(3, torch.tensor([0.9, 0.8, 0.9])))
    with pytest.raises(ValueError, match="one sparsity"):
        ap.sample_given_count(gt, 1, 10, torch.Generator())
