import pytest
import torch

from sdl_paper import absorption as ab, data


def _hierarchy():
    W = data.feature_matrix(32, 12, 0.1, seed=0).double()
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
