import torch

from sdl_paper import data, regions as rg
from sdl_paper.activations import make_activation

RELU = make_activation("relu")


def _setup(n_q=5, seed=0):
    W = data.make_world(6, 8, 0.99, 0.3, n_layers=1, seed=seed).layers[0].double()
    gt = data.GroundTruth(W, W, data.Coefficients(8, 0.99))
    g = torch.Generator().manual_seed(seed)
    return gt, torch.randn(n_q, 6, generator=g, dtype=torch.float64), torch.randn(6, n_q, generator=g, dtype=torch.float64)


def test_pattern_marks_which_features_fire_which_latents():
    W_p = torch.eye(3, dtype=torch.float64)
    W_E = torch.tensor([[1.0, 1.0, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    F = rg.pattern(W_E, RELU, W_p)
    assert F.tolist() == [[True, True, False], [False, False, False]]
    assert rg.pattern_counts(F) == {"dead": 1, "monosemantic": 0, "polysemantic": 1}


def test_masked_loss_equals_the_true_loss_inside_the_region():
    gt, W_E, W_D = _setup()
    F = rg.pattern(W_E, RELU, gt.W_p)
    assert torch.isclose(rg.tilde_loss(W_E, W_D, gt, RELU), rg.tilde_loss(W_E, W_D, gt, F=F))


def test_block_hessians_are_psd_and_the_joint_one_is_not():
    gt, W_E, W_D = _setup()
    H = rg.joint_hessian(W_E, W_D, gt, RELU)
    nE = W_E.numel()
    assert torch.linalg.eigvalsh(H[:nE, :nE]).min() > -1e-9
    assert torch.linalg.eigvalsh(H[nE:, nE:]).min() > -1e-9
    assert torch.linalg.eigvalsh(H).min() < -1e-3


def test_exact_decoder_zeroes_the_decoder_gradient():
    gt, W_E, _ = _setup()
    _, gD = rg.block_gradients(W_E, rg.exact_decoder(W_E, gt, RELU), gt, RELU)
    assert gD.norm() < 1e-10


def test_alternating_minimisation_never_increases_the_loss_nor_leaves_the_region():
    gt, W_E, W_D = _setup(seed=1)
    hist = rg.alternating_minimisation(W_E, W_D, gt, RELU, iters=15)
    assert all(b <= a + 1e-12 for a, b in zip(hist["loss"], hist["loss"][1:]))
    assert torch.equal(rg.pattern(hist["W_E"], RELU, gt.W_p), rg.pattern(W_E, RELU, gt.W_p))


def test_region_radius_stops_before_the_pattern_changes():
    gt, W_E, _ = _setup()
    d = torch.randn(W_E.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    r = rg.region_radius(W_E, d, RELU, gt.W_p, t_max=5.0, steps=100)
    assert r < 5.0
    F = rg.pattern(W_E, RELU, gt.W_p)
    assert torch.equal(rg.pattern(W_E + r * d, RELU, gt.W_p), F)
    assert not torch.equal(rg.pattern(W_E + (r + 0.05) * d, RELU, gt.W_p), F) or \
        not torch.equal(rg.pattern(W_E - (r + 0.05) * d, RELU, gt.W_p), F)


def test_midpoint_search_finds_no_violation_in_topk_regions_but_finds_relabelled_ones():
    g = torch.Generator().manual_seed(0)
    tried, bad = rg.midpoint_search(make_activation("topk:1"), 200, g)
    assert tried > 20 and bad == 0
    tried, bad = rg.midpoint_search(make_activation("topk:1"), 100, g, relabel=True)
    assert bad > 0
