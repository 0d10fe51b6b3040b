import functools

import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory import minima as mn, regions as rg
from sdl_paper.theory.activations import make_activation

RELU = make_activation("relu")


@functools.lru_cache(maxsize=1)
def _world():
    return ground_truth.make_world(16, 12, 0.99, 0.2, seed=0)


def _gt(S=None, target_layer=1):
    w = _world()
    S = torch.linspace(0.98, 0.995, 12) if S is None else S
    return ground_truth.GroundTruth(w.layers[0].double(), w.layers[target_layer].double(), ground_truth.Coefficients(12, S))


def test_ground_truth_loss_is_within_both_bounds():
    gt = _gt(0.99, 0)
    W_E, W_D = mn.ground_truth_solution(gt, 14)
    b = mn.ground_truth_bound(gt)
    loss = rg.tilde_loss(W_E, W_D, gt, RELU).item()
    assert 0 < loss <= b["ours"] <= b["paper"]


def test_zero_loss_decoder_reconstructs_every_feature_and_refuses_rank_deficient_encoders():
    gt = _gt()
    W_E = torch.randn(20, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    W_D = mn.zero_loss_decoder(W_E, gt, RELU)
    assert rg.tilde_loss(W_E, W_D, gt, RELU) < 1e-20
    import pytest
    with pytest.raises(ValueError, match="rank"):
        mn.zero_loss_decoder(W_E[:5], gt, RELU)


def test_example_3_5_is_a_spurious_partial_minimum():
    W_E, W_D, gt, spec = mn.example_3_5()
    sigma = make_activation(spec)
    probe = mn.partial_minimality(W_E, W_D, gt, sigma)
    assert abs(probe["loss"] - 1) < 1e-12 and probe["grad_E"] == 0 and probe["grad_D"] == 0


def test_random_partition_has_the_requested_structure():
    assign = mn.random_partition(12, 14, 3, torch.Generator().manual_seed(0))
    sizes = torch.bincount(assign, minlength=14)
    assert (sizes[:3] >= 2).all() and (sizes[3:9] == 1).all() and (sizes[9:] == 0).all()


def test_paper_construction_zeroes_only_the_decoder_gradient_and_eigen_construction_zeroes_both():
    gt = _gt()
    g = torch.Generator().manual_seed(0)
    found = False
    for _ in range(8):
        assign = mn.random_partition(12, 14, 3, g, n_mono=3)
        W_E = mn.realize_relu(gt, assign, 14, targets=0.5 + torch.rand(12, generator=g, dtype=torch.float64))
        assert torch.equal(rg.pattern(W_E, RELU, gt.W_p), torch.nn.functional.one_hot(assign, 14).T.bool())
        gE, gD = rg.block_gradients(W_E, mn.paper_decoder(W_E, gt, assign), gt, RELU)
        assert gD.norm() < 1e-10 and gE.norm() > 1e-4
        sol = mn.eigen_solution(gt, assign, 14)
        if sol is not None:
            found = True
            gE, gD = rg.block_gradients(*sol, gt, RELU)
            assert gE.norm() < 1e-10 and gD.norm() < 1e-10
            pred = mn.eigen_targets(gt, assign)["loss"]
            assert abs(rg.tilde_loss(*sol, gt, RELU).item() - pred) < 1e-10
    assert found


def test_group_spectrum_certifies_single_signed_eigenvectors():
    E, D, gt, _ = mn.example_3_5(1.0, 2.0)                     # diag(1, 2): only e_1, e_2
    sp = mn.group_spectrum(gt, [0, 1])
    assert torch.allclose(gt.M_d(), torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert sp["gap"] > 0.5 and sp["signedness"].max() <= 0
    ang = torch.tensor([0.0, 2.0944], dtype=torch.float64)    # 120 degrees: the second eigenvector is positive
    W = torch.stack([ang.cos(), ang.sin()])
    sp = mn.group_spectrum(ground_truth.GroundTruth(W, W, ground_truth.Coefficients(2, 0.99)), [0, 1])
    assert sp["signedness"][0] > 0 > sp["signedness"][1]


def test_eigen_solution_at_120_degrees_is_a_block_minimum_with_loss_one_and_a_half_M():
    ang = torch.tensor([0.0, 120.0], dtype=torch.float64) * torch.pi / 180
    W = torch.stack([ang.cos(), ang.sin()])
    gt = ground_truth.GroundTruth(W, W, ground_truth.Coefficients(2, 0.99))
    assert mn.eigen_solution(gt, torch.tensor([0, 0]), 2, "top") is None   # the top eigenvector has mixed signs
    E, D = mn.eigen_solution(gt, torch.tensor([0, 0]), 2)
    probe = mn.partial_minimality(E, D, gt, RELU, n_dirs=50, scales=(1e-3, 0.5))
    assert abs(probe["loss"] / gt.M_d()[0].item() - 1.5) < 1e-9
    assert probe["max_drop_E"] <= 1e-12 and probe["max_drop_D"] <= 1e-12 and probe["directions_in_region"] > 0


def test_partial_minimality_detects_a_descent_direction():
    E, D, gt, spec = mn.example_3_5(1.0, 2.0)                  # the paper's formula is not a partial minimum here
    probe = mn.partial_minimality(E, D, gt, make_activation(spec), n_dirs=50)
    assert probe["grad_E"] > 1e-3 and probe["max_drop_E"] > 0


def test_polish_runs_to_the_edge_when_no_partial_minimum_exists():
    E, _, gt, _ = mn.example_3_5(1.0, 2.0)
    E[1] = -1.0
    out = mn.polish_partition(E, rg.exact_decoder(E, gt, RELU), gt, RELU, iters=30)
    assert out["min_ratio"] < 1e-6 and abs(out["loss"][-1] - 1.0) < 1e-6


def test_descend_batch_matches_independent_runs_and_certify_endpoint():
    gt = _gt(0.99, 0)
    top1 = make_activation("relu>topk:1")
    g = torch.Generator().manual_seed(3)
    E0 = 0.25 * torch.randn(2, 12, 16, generator=g, dtype=torch.float64)
    D0 = 0.25 * torch.randn(2, 16, 12, generator=g, dtype=torch.float64)
    E, D, L = mn.descend_batch(E0, D0, gt, top1, steps=30, lr=0.01)
    E1, D1, hist = mn.descend(E0[1], D0[1], gt, top1, steps=30, lr=0.01)
    assert torch.allclose(E[1], E1) and torch.allclose(D[1], D1)
    row = mn.certify_endpoint(E[1], D[1], gt, top1, polish_iters=5, n_dirs=5)
    assert row["dead grad"] == 0.0 and row["L~ (polished)"] <= row["L~ (end)"] + 1e-12


def test_dead_latents_get_exactly_zero_gradient():
    gt = _gt()
    assign = mn.random_partition(12, 14, 3, torch.Generator().manual_seed(1))
    W_E = mn.realize_relu(gt, assign, 14)
    W_D = torch.randn(16, 14, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    gE, gD = rg.block_gradients(W_E, W_D, gt, RELU)
    dead = torch.bincount(assign, minlength=14) == 0
    assert (gE[dead] == 0).all() and (gD[:, dead] == 0).all()


def test_compare_constructions_reports_both_and_dead_gradients_are_zero():
    gt = _gt()
    g = torch.Generator().manual_seed(0)
    rows = [mn.compare_constructions(gt, mn.random_partition(12, 14, 3, g, n_mono=3), 14, RELU, n_dirs=10,
                                     generator=g) for _ in range(6)]
    assert all(r["realizable"] for r in rows)
    ours = [r for r in rows if "ours L~" in r]
    assert ours and all(r["dead grad"] == 0.0 and r["ours L~"] > 0 for r in ours)
    assert all(("ours L~" in r) == (r["signedness"] > 1e-9) for r in rows)
