import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory import instantiations


def test_the_instantiation_table_has_the_papers_four_methods():
    t = instantiations.table()
    assert list(t.index) == ["SAE", "tied SAE", "transcoder", "crosscoder"]
    assert t.loc["tied SAE", "tied"] and not t.loc["SAE", "tied"]


def test_each_method_is_the_same_model_on_a_different_view():
    world = ground_truth.make_world(6, 9, 0.9, 0.5, seed=0)
    for name, inst in instantiations.INSTANTIATIONS.items():
        gt = inst.view(world)
        model = inst.model(gt, n_q=12, activation="topk:2")
        assert type(model).__name__ == "SDL" and model.tied == inst.tied
        assert (model.n_p, model.n_r) == (gt.n_p, gt.n_r)
    sae, tc = instantiations.get("sae").view(world), instantiations.get("Transcoder").view(world)
    assert torch.equal(sae.W_p, sae.W_r) and torch.equal(tc.W_r, world.layers[1])
    assert instantiations.get("crosscoder").view(world).n_p == 12


def test_unknown_method_names_the_known_ones():
    import pytest
    with pytest.raises(ValueError, match="known: SAE, tied SAE, transcoder, crosscoder"):
        instantiations.get("skip transcoder")
