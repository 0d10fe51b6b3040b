import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sdl_paper.sources import ground_truth


@settings(max_examples=25, deadline=None)
@given(n_p=st.integers(2, 24), ratio=st.floats(0.5, 2.0), M=st.floats(0.15, 0.6), seed=st.integers(0, 10_000))
def test_feature_matrix_has_unit_columns_and_respects_the_interference_bound(n_p, ratio, M, seed):
    n = max(2, int(n_p * ratio))
    W = ground_truth.feature_matrix(n_p, n, M, seed=seed)
    assert W.shape == (n_p, n)
    assert torch.allclose(W.norm(dim=0), torch.ones(n), atol=1e-5)
    assert ground_truth.max_interference(W) <= M + 1e-6


def test_feature_matrix_is_determined_by_its_seed():
    a, b, c = (ground_truth.feature_matrix(16, 24, 0.3, seed=s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unreachable_interference_fails_with_a_message_naming_M():
    with pytest.raises(ground_truth.InterferenceUnreachable, match="M=0.01"):
        ground_truth.feature_matrix(4, 40, 0.01, max_steps=50)


@pytest.mark.parametrize("M", [-0.5, 1.0, 1.5])
def test_impossible_interference_is_rejected_before_any_work(M):
    with pytest.raises(ValueError, match="M="):
        ground_truth.feature_matrix(8, 5, M)


@pytest.mark.parametrize("S", [-0.1, 1.0, 1.2])
def test_sparsity_outside_unit_interval_is_rejected(S):
    with pytest.raises(ValueError, match=r"S=.*\[0.0, 1.0\)"):
        ground_truth.Coefficients(10, S)


@settings(max_examples=10, deadline=None)
@given(S=st.floats(0.5, 0.99), seed=st.integers(0, 1000))
def test_features_fire_at_rate_one_minus_S(S, seed):
    c = ground_truth.Coefficients(50, S)
    x = c.sample(4000, torch.Generator().manual_seed(seed))
    assert (x >= 0).all()
    rate = (x > 0).double().mean().item()
    se = ((1 - S) * S / x.numel()) ** 0.5
    assert abs(rate - (1 - S)) < 5 * se


def test_per_feature_sparsity_is_honoured():
    S = torch.tensor([0.5, 0.9, 0.99])
    x = ground_truth.Coefficients(3, S).sample(200_000, torch.Generator().manual_seed(0))
    rates = (x > 0).double().mean(0)
    assert torch.allclose(rates, 1 - S.double(), atol=0.005)


def test_exact_M_d_matches_monte_carlo_and_a_wrong_formula_does_not():
    c = ground_truth.Coefficients(8, torch.tensor([0.9, 0.95, 0.8, 0.9, 0.97, 0.9, 0.85, 0.9]), c_min=0.5, beta=2.0)
    x = c.sample(400_000, torch.Generator().manual_seed(3))
    mc, se = ground_truth.estimate_M_d(x)
    assert ((mc - c.M_d()).abs() / se).max() < 5
    wrong = c.M_d() / ground_truth.second_moment(0.5, 2.0) * (0.5 + 2.0) ** 2   # E[x]^2 instead of E[x^2]
    assert ((mc - wrong).abs() / se).max() > 10


def test_batches_stream_reproducibly_from_a_seed():
    world = ground_truth.make_world(8, 12, 0.9, 0.4, seed=0)
    gt = world.view([0], [1])
    first = [b[1] for b in gt.batches(16, 3, seed=5)]
    again = [b[1] for b in gt.batches(16, 3, seed=5)]
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, again))
    x, x_p, x_r = next(gt.batches(16, 1, seed=5))
    assert torch.allclose(x_p, x @ world.layers[0].T) and torch.allclose(x_r, x @ world.layers[1].T)


def test_stacked_views_keep_unit_columns():
    world = ground_truth.make_world(6, 10, 0.9, 0.5, n_layers=3, seed=1)
    gt = world.view([0, 1, 2], [0, 1, 2])
    assert gt.n_p == 18 and torch.allclose(gt.W_p.norm(dim=0), torch.ones(10), atol=1e-5)
    with pytest.raises(ValueError, match="layer indices"):
        world.view([0, 3], [0])
