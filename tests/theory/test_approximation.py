import functools
import math

import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory import approximation as ap
from sdl_paper.theory.framework import SDL, per_feature_loss, sdl_loss


@functools.lru_cache(maxsize=None)
def _world(n=20, n_p=12):
    return ground_truth.make_world(n_p, n, 0.99, 0.3, n_layers=1, seed=0)


def _gt(S=0.99, n=20, n_p=12):
    return _world(n, n_p).view([0], [0]).with_sparsity(S)


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
    gt = ground_truth.GroundTruth(torch.eye(3), torch.eye(3), ground_truth.Coefficients(3, torch.tensor([0.9, 0.8, 0.9])))
    with pytest.raises(ValueError, match="one sparsity"):
        ap.sample_given_count(gt, 1, 10, torch.Generator())


def test_uniform_magnitudes_and_their_truncated_moment():
    U = ap.Uniform(0.5, 1.5)
    t = U.sample((200_000,), torch.Generator().manual_seed(0))
    assert t.min() >= 0.5 and t.max() <= 1.5
    for theta in (0.3, 0.9, 2.0):
        mc = (t ** 2 * (t <= theta)).mean().item()
        assert abs(mc - U.moment_below(theta)) < 0.01, theta
    assert U.moment_below(0.3) == 0 and math.isclose(U.moment_below(2.0), U.second_moment())


def test_exact_jumprelu_one_feature_term_matches_monte_carlo():
    gt = _gt()
    model = SDL(12, 24, activation="jumprelu:0.3", seed=1)
    exact = ap.jumprelu_single_exact(model, gt)
    mc = ap.loss_split(model, gt, n_samples=40000, seed=4)
    assert abs(exact["single"] - mc["single"]) < 4 * mc["single_se"]
    assert abs(exact["single"] - exact["L_tilde"]) > 5 * mc["single_se"]        # the threshold matters here
    assert math.isclose(exact["L_tilde"], per_feature_loss(model, gt).item(), rel_tol=1e-5)
    flat = ap.jumprelu_single_exact(SDL(12, 24, activation="jumprelu:0.0", seed=1), gt)   # theta = 0 is ReLU
    assert abs(flat["excess_below"]) < 1e-12 and abs(flat["excess_above"]) < 1e-12


def test_identity_counterexample_closed_form_matches_monte_carlo():
    U, theta = ap.Uniform(0.5, 1.5), 0.9
    for n, p in ((2, 0.02), (3, 0.2)):
        cf = ap.identity_jumprelu_closed_form(n, theta, U, p)
        model, gt = ap.identity_jumprelu(n, theta, 1 - p)
        mc = ap.loss_split(model, gt, n_samples=40000, seed=n, magnitudes=U)
        assert mc["L_tilde"] == 0 and cf["L_tilde"] == 0
        se = math.hypot(mc["single_se"], mc["gap_se"])
        assert abs(mc["L_SDL"] - cf["L_SDL"]) < 4 * se
        assert abs(mc["gap"] - cf["gap_avg"]) < 4 * mc["gap_se"]           # the multi-feature term is O(p^2)
        assert mc["C_max"] <= cf["C"] and (n > 2 or mc["C_max"] > 0.97 * cf["C"])   # C is the supremum


def test_plain_monte_carlo_agrees_with_the_identity():
    gt = _gt(S=0.97)
    model = SDL(12, 24, activation="relu", seed=2)
    split = ap.loss_split(model, gt, n_samples=20000)
    check = ap.identity_check(model, gt, 100_000, split, seed=1)
    assert abs(check["z"]) < 4 and check["power"] > 10
    jump = SDL(12, 24, activation="jumprelu:0.5", seed=2)         # one-feature term != L~: the identity fails
    split = ap.loss_split(jump, gt, n_samples=20000)
    assert abs(ap.identity_check(jump, gt, 100_000, split, seed=1)["z"]) > 5
