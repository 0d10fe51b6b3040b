"""The sparsity-coefficient finder: it brackets and interpolates, and the coefficient it returns reaches the
target L0 when trained again."""
import pytest
import torch

from sdl_paper import Config, train
from sdl_paper.model.dictionary import encode
from sdl_paper.training.calibrate import find_sparsity_coefficient


def test_the_found_l1_coefficient_reaches_the_target_l0():
    x = torch.relu(torch.randn(2048, 8, generator=torch.Generator().manual_seed(0)))
    cfg = Config.theory(method="relu", steps=150, batch_size=128, lr=1e-2)
    found = find_sparsity_coefficient(x, cfg, 16, target_l0=4.0, values=[1e-3, 1e-2, 1e-1, 1.0, 10.0])
    assert len(found["tried"]) == 9
    ls = [l0 for _, l0 in found["tried"]]
    assert max(ls) > 4.0 > min(ls)                               # the target was bracketed
    state = train(x, cfg.replace(l1=found["coefficient"]), 16, [0], progress=False)
    _, a = encode(state.params, x[None], cfg)
    assert (a != 0).float().sum(-1).mean().item() == pytest.approx(4.0, rel=0.3)


def test_the_finder_refuses_what_it_cannot_tune_and_says_when_the_grid_misses():
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="TopK methods set L0 with k"):
        find_sparsity_coefficient(x, Config.theory(method="topk", k=2), 16, 2.0)
    with pytest.raises(ValueError, match="must be a number in"):
        find_sparsity_coefficient(x, Config.theory(method="relu"), 16, 0.0)
    with pytest.raises(ValueError, match="widen values="):
        find_sparsity_coefficient(x, Config.theory(method="relu", steps=20, batch_size=32), 16, 15.9,
                                  values=[10.0, 100.0])
