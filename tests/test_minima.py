import torch

from sdl_paper import data, minima as mn, regions as rg
from sdl_paper.activations import make_activation

RELU = make_activation("relu")


def _gt(S=None, target_layer=1):
    w = data.make_world(16, 12, 0.99, 0.2, seed=0)
    S = torch.linspace(0.98, 0.995, 12) if S is None else S
    return data.GroundTruth(w.layers[0].double(), w.layers[target_layer].double(), data.Coefficients(12, S))


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


def test_paper_construction_zeroes_only_the_decoder_gradient_and_ours_zeroes_both():
    gt = _gt()
    g = torch.Generator().manual_seed(0)
    found = False
    for _ in range(30):
        assign = mn.random_partition(12, 14, 3, g)
        W_E = mn.realize_relu(gt, assign, 14)
        assert torch.equal(rg.pattern(W_E, RELU, gt.W_p), torch.nn.functional.one_hot(assign, 14).T.bool())
        gE, gD = rg.block_gradients(W_E, mn.paper_decoder(W_E, gt, assign), gt, RELU)
        assert gD.norm() < 1e-10 and gE.norm() > 1e-4
        sol = mn.rank_one_solution(gt, assign, 14)
        if sol is not None:
            found = True
            gE, gD = rg.block_gradients(*sol, gt, RELU)
            assert gE.norm() < 1e-10 and gD.norm() < 1e-10
            groups = [(assign == i).nonzero().flatten().tolist() for i in assign.unique()]
            assert abs(rg.tilde_loss(*sol, gt, RELU).item() - mn.rank_one_loss(gt, groups)) < 1e-10
    assert found


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
    rows = [mn.compare_constructions(gt, mn.random_partition(12, 14, 3, g), 14, RELU, n_dirs=20) for _ in range(20)]
    assert all(r["realizable"] for r in rows)
    ours = [r for r in rows if "ours L~" in r]
    assert ours and all(r["dead grad"] == 0.0 and r["ours L~"] > 0 for r in ours)
    assert all(("ours L~" in r) == r["all z > 0"] for r in rows)
