import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory import absorption as ab


def _hierarchy():
    W = ground_truth.feature_matrix(32, 12, 0.1, seed=0).double()
    return ab.Hierarchy(W, [0, 1, 2], [[3, 4, 5], [6, 7, 8], [9, 10, 11]])


def test_atoms_are_unit_parent_plus_child_directions():
    h = _hierarchy()
    V = h.atoms()
    assert V.shape == (32, 9) and torch.allclose(V.norm(dim=0), torch.ones(9, dtype=torch.float64))
    assert h.owner().tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_split_realizes_the_absorbed_pattern_for_the_least_activated_child_only():
    h = _hierarchy()
    V, W_E = h.atoms(), ab.faithful_encoder(h)
    split = ab.split_child(W_E, V, 0.45, 0)
    assert split.realized and split.W_E.shape == (4, 32)
    acts = W_E[0] @ V[:, :3]
    assert split.child == int(acts.argmin())
    for j in range(3):
        if j != split.child:
            assert not ab.split_child(W_E, V, 0.45, 0, child=j).realized


def test_middle_atom_in_two_dimensions_cannot_be_split_off():
    ang = torch.tensor([55.0, 90.0, 120.0], dtype=torch.float64) * torch.pi / 180
    V = torch.stack([ang.cos(), ang.sin()])
    assert not ab.row_exists(V, [0, 2], 0.45) and ab.row_exists(V, [1, 2], 0.45)


def test_split_rejects_a_latent_with_fewer_than_two_atoms():
    import pytest
    h = _hierarchy()
    with pytest.raises(ValueError, match="at least two"):
        ab.split_child(ab.faithful_encoder(h), h.atoms(), 0.99, 0)


def test_tree_coefficients_respect_the_hierarchy():
    tc = ab.TreeCoefficients(3, 4, n_free=5, p_parent=0.3, rho=0.6, child_decay=0.5, p_free=0.1)
    x = tc.sample(40000, torch.Generator().manual_seed(0))
    assert x.shape == (40000, 3 * 5 + 5) and (x >= 0).all()
    for p in range(3):
        kids = x[:, [tc.child(p, j) for j in range(4)]] > 0
        assert ((kids.sum(1) > 0) <= (x[:, p] > 0)).all()            # a child implies its parent
        assert (kids.sum(1) <= 1).all()                                # at most one child at a time
        on = x[:, p] > 0
        assert abs(on.float().mean().item() - 0.3) < 0.01
        assert abs(kids[on].any(1).float().mean().item() - 0.6) < 0.015     # co-occurrence rho
        freq = kids[on].float().mean(0) / kids[on].any(1).float().mean()
        assert torch.allclose(freq, tc.child_probs().float(), atol=0.02)     # child_decay^j frequencies
    full = ab.TreeCoefficients(2, 2, rho=1.0, p_parent=0.5).sample(5000, torch.Generator().manual_seed(1))
    for p in range(2):
        assert ((full[:, p] > 0) == (full[:, [2 + 2 * p, 3 + 2 * p]] > 0).any(1)).all()   # parent iff a child


@pytest.mark.parametrize("kw", [{"rho": 1.5}, {"p_parent": -0.1}, {"child_decay": 0.0}, {"n_children": 0}])
def test_tree_coefficients_reject_bad_values(kw):
    with pytest.raises(ValueError):
        ab.TreeCoefficients(**({"n_parents": 2, "n_children": 2} | kw))


def _tie_hierarchy():
    return ab.Hierarchy(torch.eye(12, dtype=torch.float64), [0, 1, 2], [[3, 4, 5], [6, 7, 8], [9, 10, 11]])


def test_tied_children_are_all_dropped_and_break_tie_repairs_the_split():
    h = _tie_hierarchy()
    V, W_E = h.atoms(), ab.faithful_encoder(h)
    split = ab.split_child(W_E, V, 0.45, 0)
    F = ab.threshold_pattern(split.W_E, V, split.c_new)
    assert not split.realized and not F[0].any() and F[:, 1:3].sum() == 0    # parent dead, two atoms lost
    tilted = ab.break_tie(W_E, V, 0.45, 0, 2)
    assert torch.equal(ab.threshold_pattern(tilted, V, 0.45), ab.threshold_pattern(W_E, V, 0.45))
    fixed = ab.split_child(tilted, V, 0.45, 0)
    assert fixed.realized and fixed.child == 2


def _two_d():
    import math
    deg = torch.tensor([90.0, 270.0, 20.0, 80.0, 150.0, 190.0, 340.0], dtype=torch.float64) * math.pi / 180
    return ab.Hierarchy(torch.stack([deg.cos(), deg.sin()]), [0, 1], [[2, 3, 4], [5, 6]]).atoms()


def test_no_row_certificate_is_valid_and_agrees_with_the_feasibility_lp():
    V = _two_d()
    for c in (0.45, 0.0):
        for fire in ([0, 1], [1, 2], [0, 2], [1], [0, 1, 2], [3, 4]):
            cert = ab.no_row_certificate(V, fire, c)
            assert (cert is None) == ab.row_exists(V, fire, c)
            if cert is not None:
                y, z, resid = cert
                rest = [d for d in range(5) if d not in fire]
                assert (y >= 0).all() and (z >= 0).all() and abs(y.sum() - 1) < 1e-9 and resid < 1e-9
                assert c == 0 or z.sum() <= 1 + 1e-9
    assert ab.no_row_certificate(V, [0, 2], 0.45) is not None and ab.no_row_certificate(V, [1, 2], 0.45) is None
    assert ab.no_row_certificate(V, [1, 2], 0.0) is not None      # ReLU: the same cut is impossible


def test_pattern_partial_minimum_has_zero_block_gradients_and_the_rank_one_loss():
    from sdl_paper.theory import minima as mn, regions as rg
    from sdl_paper.theory.activations import make_activation
    W = torch.eye(12, dtype=torch.float64) + 0.1 * torch.rand(12, 12, generator=torch.Generator().manual_seed(0),
                                                              dtype=torch.float64)
    V = ab.Hierarchy(W / W.norm(dim=0), [0, 1, 2], [[3, 4, 5], [6, 7, 8], [9, 10, 11]]).atoms()
    gt = ground_truth.GroundTruth(V, V, ground_truth.Coefficients(9, torch.linspace(0.98, 0.995, 9)))
    groups = [[0, 1], [2], [3, 4, 5], [6, 7, 8]]
    W_E, W_D = ab.pattern_partial_minimum(V, gt.M_d().double(), groups, 0.5)
    sig = make_activation("jumprelu:0.5")
    F = ab.threshold_pattern(W_E, V, 0.5)
    assert [F[i].nonzero().flatten().tolist() for i in range(4)] == groups
    gE, gD = rg.block_gradients(W_E, W_D, gt, sig)
    assert gE.norm() < 1e-10 and gD.norm() < 1e-10
    assert abs(rg.tilde_loss(W_E, W_D, gt, sig).item() - mn.rank_one_loss(gt, groups)) < 1e-12
    assert ab.pattern_partial_minimum(V, gt.M_d().double(), groups, 0.99) is None   # targets below threshold


@pytest.mark.parametrize("rho, independent", [(1.0, False), (0.6, False), (0.6, True)])
def test_tree_M_d_is_the_probability_that_a_feature_is_active_alone(rho, independent):
    from sdl_paper.theory.absorption import Tree
    tc = Tree(2, 3, n_free=2, p_parent=0.3, rho=rho, child_decay=0.7, p_free=0.2, independent=independent)
    x = tc.sample(200_000, torch.Generator().manual_seed(0), dtype=torch.float64) > 0
    alone = (x & (x.sum(1, keepdim=True) == 1)).double().mean(0)
    M = tc.M_d()
    se = (M * (1 - M) / len(x)).sqrt()
    assert torch.all((alone - M).abs() <= 5 * se + 1e-12), (alone, M)
    if not independent:
        assert (M[2:8] == 0).all()                      # a child is never active alone
        assert bool((M[:2] == 0).all()) == (rho == 1.0)  # Def 3.2: at rho = 1 no parent is alone either
