import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory.framework import SDL, per_feature_loss, per_feature_residuals, sdl_loss


def _world(n_p=8, n=12, S=0.95, M=0.3, seed=0):
    return ground_truth.make_world(n_p, n, S, M, seed=seed)


def test_shapes_and_the_tied_decoder():
    m = SDL(8, 20, 5, activation="topk:2")
    x_hat, x_q = m(torch.randn(7, 8))
    assert m.W_E.shape == (20, 8) and m.W_D.shape == (5, 20) and x_hat.shape == (7, 5) and x_q.shape == (7, 20)
    t = SDL(8, 20, tied=True)
    assert torch.equal(t.W_D, t.W_E.T) and len(list(t.parameters())) == 1
    with pytest.raises(ValueError, match="tied=True needs n_r == n_p"):
        SDL(8, 20, 5, tied=True)


def test_biases_are_off_by_default_and_optional():
    assert SDL(4, 6).b_E is None
    m = SDL(4, 6, bias=True)
    assert m.b_E.shape == (6,) and m.b_D.shape == (4,)


def test_per_feature_loss_is_the_weighted_loss_of_single_feature_inputs():
    gt = _world().view([0], [1])
    m = SDL(gt.n_p, 16, gt.n_r, activation="relu", seed=1)
    direct = torch.stack([sdl_loss(m, gt.W_p[:, d][None], gt.W_r[:, d][None]) for d in range(gt.n)])
    assert torch.allclose(per_feature_residuals(m, gt), direct, atol=1e-6)
    assert torch.isclose(per_feature_loss(m, gt), (gt.M_d().float() * direct).sum())


def test_ground_truth_dictionary_has_zero_per_feature_loss_when_features_are_orthogonal():
    W = torch.linalg.qr(torch.randn(10, 10, generator=torch.Generator().manual_seed(0)))[0][:, :6]
    gt = ground_truth.GroundTruth(W, W, ground_truth.Coefficients(6, 0.99))
    m = SDL(10, 6, activation="relu")
    with torch.no_grad():
        m.W_E.copy_(W.T)
        m._W_D.copy_(W)
    assert per_feature_loss(m, gt).item() < 1e-10


def test_per_feature_loss_approximates_the_sdl_loss_in_extreme_sparsity():
    gt = _world(n_p=16, n=20, S=0.999).view([0], [0])
    m = SDL(16, 24, activation="relu", seed=2)
    _, x_p, x_r = gt.sample(400_000, torch.Generator().manual_seed(0))
    mc, lt = sdl_loss(m, x_p, x_r).item(), per_feature_loss(m, gt).item()
    assert abs(mc - lt) / lt < 0.1
