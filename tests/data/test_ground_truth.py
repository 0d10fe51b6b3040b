import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sdl_paper.data import ground_truth


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


# Today's outputs, recorded with the bench's algorithm before the fallback search was added (float64 sums of W and
# of W**2 of the float32 matrix): feature_matrix must return these matrices bit for bit whenever the bench succeeds.
# (32, 48, 0.05) and (32, 48, 0.1) are chapter parameters whose M lies below the Welch bound (0.103): reachable,
# because only positive interference is bounded.
RECORDED = {
    (24, 32, 0.3, 0): (-1.269657143202, 32.000000077159),
    (32, 48, 0.25, 1): (-0.875308475078, 47.999999925813),
    (16, 24, 0.3, 1): (0.967383422423, 23.999999975380),
    (64, 96, 0.2, 0): (2.575988427177, 95.999999945575),
    (8, 10, 0.4, 3): (1.080155618954, 9.999999924053),
    (64, 96, 0.1, 0): (4.531585949425, 96.000000026270),
    (32, 48, 0.1, 0): (0.870511359477, 48.000000043525),
    (32, 48, 0.05, 0): (0.134326190017, 48.000000173050),
}


@pytest.mark.parametrize("call", list(RECORDED))
def test_matrices_the_bench_finds_are_unchanged(call):
    n_p, n, M, seed = call
    W = ground_truth.feature_matrix(n_p, n, M, seed=seed).double()
    total, squares = RECORDED[call]
    assert W.sum().item() == pytest.approx(total, abs=1e-9)
    assert (W ** 2).sum().item() == pytest.approx(squares, abs=1e-9)


def test_failure_reports_the_best_value_reached_and_the_welch_bound():
    # Before the change this call raised with "best max interference 1.0000": the value of the last step.
    with pytest.raises(ground_truth.InterferenceUnreachable) as info:
        ground_truth.feature_matrix(4, 40, 0.442, max_steps=100)
    e = info.value
    assert e.reached < 0.99 and f"{e.reached:.4f}" in str(e) and "M=0.442" in str(e)
    assert f"{ground_truth.welch_bound(4, 40):.4f}" == "0.4804" and "Welch bound 0.4804" in str(e)
    assert e.W.shape == (4, 40) and torch.allclose(e.W.norm(dim=0), torch.ones(40), atol=1e-5)
    assert ground_truth.max_interference(e.W.double()) == pytest.approx(e.reached, abs=1e-5)


@pytest.mark.parametrize("M", [0.2, 0.3])
def test_feasible_targets_the_bench_misses_are_reached(M):
    # Before the change both calls raised InterferenceUnreachable (the bench stalls at 0.214 and 0.314).
    W = ground_truth.feature_matrix(32, 256, M, seed=0)
    assert W.shape == (32, 256)
    assert torch.allclose(W.norm(dim=0), torch.ones(256), atol=1e-5)
    assert ground_truth.max_interference(W) <= M + 1e-6


@pytest.mark.parametrize("n_p, n, M, most", [(32, 256, 0.1, 224), (8, 17, 0.0, 16), (8, 10, -0.05, 9), (4, 40, 0.01, 8)])
def test_provably_unreachable_interference_is_refused_at_once(n_p, n, M, most):
    t = time.perf_counter()
    with pytest.raises(ground_truth.InterferenceUnreachable, match=f"M={M}.*at most {most} of them") as info:
        ground_truth.feature_matrix(n_p, n, M)
    assert time.perf_counter() - t < 0.5 and info.value.reached is None
    assert f"M >= {ground_truth.interference_floor(n_p, n):.4f}" in str(info.value)


@settings(max_examples=40, deadline=None)
@given(n_p=st.integers(1, 12), n=st.integers(2, 60), seed=st.integers(0, 10_000))
def test_the_vector_count_bound_holds_for_random_and_known_configurations(n_p, n, seed):
    W = torch.randn(n_p, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    W = W / W.norm(dim=0)
    assert ground_truth.most_vectors(n_p, ground_truth.max_interference(W)) >= n * (1 - 1e-9)
    cross = torch.cat([torch.eye(n_p), -torch.eye(n_p)], 1).double()          # Rankin's 2 n_p at M = 0
    assert ground_truth.most_vectors(n_p, ground_truth.max_interference(cross)) == pytest.approx(2 * n_p)
    assert ground_truth.most_vectors(n_p, -1 / n_p) >= n_p + 1 - 1e-9            # the regular simplex


def test_welch_bound():
    assert ground_truth.welch_bound(32, 256) == pytest.approx(((256 - 32) / (32 * 255)) ** 0.5)
    assert ground_truth.welch_bound(32, 24) == 0.0


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
