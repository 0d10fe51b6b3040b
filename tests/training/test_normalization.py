"""Activation normalisation (SAELens's expected_average_only_in): inputs scaled to mean squared norm = width during
training, the factor folded into the weights when the dictionary is made, so it works on raw activations."""
import pytest
import torch

from sdl_paper import Config, Dictionary, load_checkpoint, train
from sdl_paper.model.dictionary import decode, encode


def _x(scale=40.0):
    g = torch.Generator().manual_seed(0)
    return scale * torch.relu(torch.randn(1024, 8, generator=g)) @ torch.randn(8, 8, generator=g)


@pytest.mark.parametrize("cfg", [
    Config.theory(k=2, bias=True), Config.standard("topk", k=2), Config.standard("jumprelu"),
    Config.theory(method="relu", l1=1e-3, bias=True)], ids=["topk", "topk-standard", "jumprelu-standard", "relu"])
def test_the_saved_dictionary_reconstructs_raw_activations_as_the_scaled_model_did(cfg):
    x = _x()
    cfg = cfg.replace(steps=40, batch_size=64, lr=1e-3, normalize_activations="expected_average_only_in")
    state = train(x, cfg, 16, [0], progress=False, device="cpu")
    c = state.source["scale"][0]
    assert (x * c).pow(2).sum(1).mean().item() == pytest.approx(8.0, rel=0.1)     # mean squared norm = width
    _, a = encode(state.params, (c * x)[None], cfg)
    scaled = decode(state.params, a, cfg)[0] / c                     # the training model, brought back to raw
    d = Dictionary.from_state(state)
    assert torch.allclose(d.decode(d.encode(x)), scaled, rtol=1e-4, atol=1e-4 * x.abs().max().item())
    on_raw = Dictionary.from_state(state.__class__(**{**state.__dict__, "source": {}}))   # factor not folded
    assert not torch.allclose(on_raw.decode(on_raw.encode(x)), scaled, atol=1e-2 * x.abs().max().item())


def test_a_transcoders_targets_get_their_own_factor_and_resume_keeps_both(tmp_path):
    from sdl_paper import as_source

    x, y = _x(40.0), _x(0.01)
    cfg = Config.theory(k=2, steps=10, batch_size=64, normalize_activations="expected_average_only_in")
    state = train(as_source(x, y), cfg, 16, [0], progress=False, checkpoint=str(tmp_path / "ck"))
    c_p, c_r = state.source["scale"]
    assert c_p < 1 < c_r
    more = train(as_source(x, y), cfg.replace(steps=20), 16, [0], state=load_checkpoint(tmp_path / "ck"),
                 progress=False)
    assert more.source["scale"] == [c_p, c_r]


def test_normalization_refuses_tied_weights_and_iterables():
    with pytest.raises(ValueError, match="untie"):
        Config.theory(tied=True, normalize_activations="expected_average_only_in")
    with pytest.raises(ValueError, match="allowed: none, expected_average_only_in"):
        Config.theory(normalize_activations="yes")
    with pytest.raises(ValueError, match="use up batches"):
        train(iter([_x()[:64]] * 3), Config.theory(k=2, steps=2, batch_size=64,
                                            normalize_activations="expected_average_only_in"), 16, [0],
              progress=False)
