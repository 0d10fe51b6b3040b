import pytest
import torch

from sdl_paper.theory import metrics


def test_recovering_every_direction_scores_one_and_sign_does_not_matter():
    W = torch.linalg.qr(torch.randn(8, 8))[0][:, :5]
    learned = torch.cat([-2 * W.T, torch.randn(3, 8)])          # rows: flipped and scaled truth plus noise
    assert metrics.gt_recovery(W, encoder=learned) == 1.0
    assert abs(metrics.max_inner_product(W, encoder=learned) - 1.0) < 1e-6


def test_random_directions_recover_nothing_in_high_dimension():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(256, 20, generator=g)
    assert metrics.gt_recovery(W, encoder=torch.randn(30, 256, generator=g)) == 0.0
    assert metrics.max_inner_product(W, encoder=torch.randn(30, 256, generator=g)) < 0.4


def test_threshold_tau_is_strict():
    truth = torch.eye(2)
    learned = torch.tensor([[0.95, (1 - 0.95 ** 2) ** 0.5]])
    s = metrics.best_cosines(truth, encoder=learned)
    assert torch.isclose(s[0], torch.tensor(0.95))
    assert metrics.gt_recovery(truth, encoder=learned, tau=0.9) == 0.5


def test_hungarian_mcc_is_one_for_a_permuted_truth_and_one_to_one():
    W = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))[0][:, :5]
    assert abs(metrics.hungarian_mcc(W[:, [3, 1, 4, 0, 2]] * -1, W) - 1) < 1e-6
    dup = torch.cat([W[:, :1]] * 5, dim=1)                          # five copies of one feature
    assert metrics.hungarian_mcc(dup, W) < 0.3                      # many-to-one is not rewarded
    assert abs(metrics.gt_recovery(W, decoder=dup) - 0.2) < 1e-6          # the paper's M_GT counts it once too


def test_explained_variance_subtracts_the_mean():
    x = torch.randn(1000, 4, generator=torch.Generator().manual_seed(0)) + 10
    assert abs(metrics.explained_variance(x, x.mean(0).expand_as(x))) < 1e-6   # predicting the mean explains 0
    assert metrics.explained_variance(x, x) == 1.0


def test_l0_and_dead_fraction():
    codes = torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0]])
    assert metrics.l0(codes) == 1.5 and metrics.sample_dead_fraction(codes) == 0.5


def _pair_world():
    """Directions e_0 (parent), e_1 (child), e_2 (free); samples with parent and child active (magnitude 1)."""
    W = torch.eye(3)
    x = torch.tensor([[1.0, 1.0, 0.0]] * 10 + [[1.0, 0.0, 0.0]] * 10)
    return W, x


def test_a_faithful_dictionary_scores_zero_and_an_exactly_absorbed_one_scores_one():
    W, x = _pair_world()
    faithful = metrics.absorption_scores(x.clone(), x, W.clone(), W, parent=0, child=1)
    assert faithful["full"] == 0.0 and faithful["partial"] == 0.0 and faithful["not_learned"] == 0.0
    assert (faithful["parent_latent"], faithful["child_latent"]) == (0, 1)
    # absorbed: the child latent's decoder is (w_P + w_c)/sqrt 2 and the parent latent is silent on the child
    W_D = torch.stack([W[:, 0], (W[:, 0] + W[:, 1]) / 2 ** 0.5, W[:, 2]], dim=1)
    codes = torch.tensor([[0.0, 2 ** 0.5, 0.0]] * 10 + [[1.0, 0.0, 0.0]] * 10)
    absorbed = metrics.absorption_scores(codes, x, W_D, W, parent=0, child=1)
    assert absorbed["full"] == 1.0 and abs(absorbed["parent_in_child"] - 2 ** -0.5) < 1e-6
    # half the child's samples absorbed, half faithful (both fire): full is one half
    codes[:5, 0] = 1.0
    assert metrics.absorption_scores(codes, x, W_D, W, parent=0, child=1)["full"] == 0.5


def test_a_parent_silenced_by_topk_crowding_is_not_absorption():
    W, _ = _pair_world()
    x = torch.tensor([[1.0, 1.0, 3.0]] * 10 + [[1.0, 0.0, 0.0]] * 10)   # a large free feature takes one of k = 2
    codes = x.clone()
    codes[:10, 0] = 0.0                                  # the parent latent lost the TopK contest
    s = metrics.absorption_scores(codes, x, W.clone(), W, parent=0, child=1)
    assert s["silent"] == 1.0 and s["full"] == 0.0       # silent, but the child latent does not carry w_P


def test_a_parent_latent_that_leans_toward_the_child_is_not_absorption_but_an_unlearned_child():
    # the false positive of the earlier score: one latent with cosine 0.87 to the parent and 0.42 to the child,
    # firing on parent-only samples too, and no latent of the child's own
    W, x = _pair_world()
    mixed = torch.tensor([0.87, 0.42, (1 - 0.87 ** 2 - 0.42 ** 2) ** 0.5])
    W_D = torch.stack([mixed, W[:, 2]], dim=1)
    codes = torch.tensor([[1.2, 0.0]] * 10 + [[0.9, 0.0]] * 10)
    s = metrics.absorption_scores(codes, x, W_D, W, parent=0, child=1)
    assert s["full"] == 0.0 and s["not_learned"] == 1.0
    assert (s["parent_latent"], s["child_latent"]) == (0, -1)
    # the same column, silent on parent-only samples, is the child's own latent carrying the parent: absorbed
    codes[10:, 0] = 0.0
    s = metrics.absorption_scores(codes, x, W_D, W, parent=0, child=1)
    assert s["full"] == 1.0 and s["not_learned"] == 0.0 and s["child_latent"] == 0


def test_samples_without_the_child_are_required():
    W, x = _pair_world()
    with pytest.raises(ValueError, match="with and without the child"):
        metrics.absorption_scores(x[:10].clone(), x[:10], W.clone(), W, parent=0, child=1)


def test_absorption_scores_detect_an_absorbed_child():
    W = torch.eye(4)                                    # directions: parent 0, children 1 and 2, other 3
    x = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]] * 10)
    # latent 0 = parent, latent 1 = child 1 absorbing the parent, latent 2 = child 2
    W_D = torch.stack([W[:, 0], (W[:, 0] + W[:, 1]) / 2 ** 0.5, W[:, 2]], dim=1)
    codes = torch.tensor([[0.0, 1.4, 0.0], [1.0, 0.0, 1.0]] * 10)
    absorbed = metrics.absorption_scores(codes, x, W_D, W, parent=0, child=1)
    faithful = metrics.absorption_scores(codes, x, W_D, W, parent=0, child=2)
    assert absorbed["full"] == 1.0 and absorbed["parent_in_child"] > 0.7
    assert faithful["full"] == 0.0 and abs(faithful["parent_in_child"]) < 1e-6


def test_orientation_is_named_and_shapes_are_checked():
    g = torch.Generator().manual_seed(0)
    W_p = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]              # n = n_p = 6
    W_E = torch.cat([W_p.T[:3], torch.randn(3, 6, generator=g)])         # (n_q = 6, n_p): rows 0-2 are features
    W_D = W_E.T.clone()                                                  # (n_p, n_q): the same directions
    assert metrics.gt_recovery(W_p, encoder=W_E) == metrics.gt_recovery(W_p, decoder=W_D) >= 0.5
    assert metrics.gt_recovery(W_p, encoder=W_D) < 0.5                   # the wrong matrix gives another number
    with pytest.raises(TypeError):
        metrics.gt_recovery(W_D, W_p)                                    # positional: refused, not guessed
    with pytest.raises(TypeError, match="exactly one"):
        metrics.best_cosines(W_p, encoder=W_E, decoder=W_D)
    with pytest.raises(ValueError, match="decoder W_D must be"):
        metrics.gt_recovery(W_p, decoder=torch.randn(5, 6))
    with pytest.raises(ValueError, match="share their first size"):
        metrics.hungarian_mcc(torch.randn(5, 6), W_p)


def test_detection_f1_and_uniqueness_by_hand():
    truth = torch.eye(3)                                    # features e0, e1, e2
    W_D = torch.tensor([[1.0, 0.0], [0.1, 1.0], [0.0, 0.2]])   # latent 0 ~ e0, latent 1 ~ e1
    x = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    codes = torch.tensor([[2.0, 0], [0.0, 0], [0.0, 3], [1.0, 3]])
    # latent 0 -> e0: TP 1 (row 0), FN 1 (row 1), FP 1 (row 3), TN 1: precision 1/2, recall 1/2, F1 1/2, acc 1/2
    # latent 1 -> e1: TP 1 (row 2), FP 1 (row 3), FN 0, TN 2: precision 1/2, recall 1, F1 2/3, acc 3/4
    m = metrics.detection_f1(codes, x, W_D, truth)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.75)
    assert m["F1"] == pytest.approx((0.5 + 2 / 3) / 2) and m["accuracy"] == pytest.approx((0.5 + 0.75) / 2)
    assert metrics.uniqueness(W_D, truth) == 1.0
    assert metrics.uniqueness(torch.tensor([[1.0, 0.9], [0.0, 0.1], [0.0, 0.0]]), truth) == 0.5   # both -> e0
