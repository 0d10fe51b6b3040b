import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory import activations as A, regions as rg
from sdl_paper.theory.activations import make_activation

RELU = make_activation("relu")


def _setup(n_q=5, seed=0):
    W = ground_truth.make_world(6, 8, 0.99, 0.3, n_layers=1, seed=seed).layers[0].double()
    gt = ground_truth.GroundTruth(W, W, ground_truth.Coefficients(8, 0.99))
    g = torch.Generator().manual_seed(seed)
    return gt, torch.randn(n_q, 6, generator=g, dtype=torch.float64), torch.randn(6, n_q, generator=g, dtype=torch.float64)


def test_pattern_marks_which_features_fire_which_latents():
    W_p = torch.eye(3, dtype=torch.float64)
    W_E = torch.tensor([[1.0, 1.0, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    F = rg.pattern(W_E, RELU, W_p)
    assert F.tolist() == [[True, True, False], [False, False, False]]
    assert rg.pattern_counts(F) == {"pattern_dead": 1, "monosemantic": 0, "polysemantic": 1}


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


def test_literal_topk_keeps_negative_values_and_positive_pattern_ignores_them():
    lit = A.LiteralTopK(2)
    z = torch.tensor([[1.0, -1.0, -2.0]], dtype=torch.float64)
    assert lit(z).tolist() == [[1.0, -1.0, 0.0]]
    W_p = torch.ones(1, 1, dtype=torch.float64)
    W_E = z.T
    assert rg.pattern(W_E, lit, W_p).flatten().tolist() == [True, True, False]
    assert rg.positive_pattern(W_E, lit, W_p).flatten().tolist() == [True, False, False]


def test_literal_topk_example_jumps_inside_one_positive_region():
    ex = rg.literal_topk_example()
    A, B, gt = ex["A"], ex["B"], ex["gt"]
    ts = torch.tensor([0.25, 0.75], dtype=torch.float64)
    L = rg.line_losses(A, ex["W_D"], gt, ex["sigma"], ts, B - A)
    assert torch.allclose(L, torch.tensor([0.25 ** 2, 2.25 ** 2], dtype=torch.float64))
    P = [rg.positive_pattern(A + t * (B - A), ex["sigma"], gt.W_p) for t in ts]
    assert torch.equal(P[0], P[1])


def test_line_losses_match_tilde_loss_pointwise():
    gt, W_E, W_D = _setup()
    g = torch.Generator().manual_seed(3)
    dE = torch.randn(W_E.shape, generator=g, dtype=torch.float64)
    dD = torch.randn(W_D.shape, generator=g, dtype=torch.float64)
    ts = torch.linspace(-1, 1, 7, dtype=torch.float64)
    for spec in ("relu", "topk:2", "batchtopk:1"):
        sigma = make_activation(spec)
        ref = torch.stack([rg.tilde_loss(W_E + t * dE, W_D + t * dD, gt, sigma) for t in ts])
        assert torch.allclose(rg.line_losses(W_E, W_D, gt, sigma, ts, dE, dD), ref, rtol=1e-12, atol=1e-12)


def test_block_line_convexity_is_nonnegative_inside_regions():
    gt, W_E, W_D = _setup()
    for block in ("decoder", "encoder"):
        worst, lines = rg.block_line_convexity(W_E, W_D, gt, RELU, block, 4, torch.Generator().manual_seed(1))
        assert lines > 0 and worst > -1e-12


def test_encoder_block_min_is_feasible_and_no_feasible_perturbation_beats_it():
    gt, W_E, W_D = _setup()
    F = rg.pattern(W_E, RELU, gt.W_p)
    W, v = rg.encoder_block_min(W_E, W_D, gt, RELU)
    sign = 2 * F.double() - 1
    assert (sign * (W @ gt.W_p)).min() > -1e-9                      # inside the closed region
    assert v <= rg.tilde_loss(W_E, W_D, gt, RELU).item()
    g = torch.Generator().manual_seed(2)
    for _ in range(100):
        cand = W + 1e-2 * torch.randn(W.shape, generator=g, dtype=torch.float64)
        if (sign * (cand @ gt.W_p)).min() >= 0:
            assert rg.tilde_loss(cand, W_D, gt, F=F).item() >= v - 1e-9


def test_line_patterns_match_pattern_pointwise():
    gt, W_E, _ = _setup()
    dE = torch.randn(W_E.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ts = torch.linspace(-2, 2, 9, dtype=torch.float64)
    for spec in ("relu", "batchtopk:1"):
        sigma = make_activation(spec)
        P = rg.line_patterns(W_E, dE, sigma, gt.W_p, ts)
        assert all(torch.equal(P[i], rg.pattern(W_E + t * dE, sigma, gt.W_p)) for i, t in enumerate(ts))


def test_line_radius_agrees_with_region_radius():
    gt, W_E, _ = _setup()
    g = torch.Generator().manual_seed(7)
    radii = []
    for _ in range(10):
        d = torch.randn(W_E.shape, generator=g, dtype=torch.float64)
        d = d / d.norm()
        radii.append(rg.region_radius(W_E, d, RELU, gt.W_p))
        assert rg.line_radius(W_E, d, RELU, gt.W_p) == radii[-1]
    assert len(set(radii)) > 1                                         # the directions reach different boundaries
