import torch

from sdl_paper import metrics


def test_recovering_every_direction_scores_one_and_sign_does_not_matter():
    W = torch.linalg.qr(torch.randn(8, 8))[0][:, :5]
    learned = torch.cat([-2 * W.T, torch.randn(3, 8)])          # rows: flipped and scaled truth plus noise
    assert metrics.gt_recovery(learned, W) == 1.0
    assert abs(metrics.max_inner_product(learned, W) - 1.0) < 1e-6


def test_random_directions_recover_nothing_in_high_dimension():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(256, 20, generator=g)
    assert metrics.gt_recovery(torch.randn(30, 256, generator=g), W) == 0.0
    assert metrics.max_inner_product(torch.randn(30, 256, generator=g), W) < 0.4


def test_threshold_tau_is_strict():
    truth = torch.eye(2)
    learned = torch.tensor([[0.95, (1 - 0.95 ** 2) ** 0.5]])
    s = metrics.best_cosines(learned, truth)
    assert torch.isclose(s[0], torch.tensor(0.95))
    assert metrics.gt_recovery(learned, truth, tau=0.9) == 0.5
