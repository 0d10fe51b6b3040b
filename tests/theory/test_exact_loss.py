"""The exact L_SDL of the binary-features law: enumeration, its one-feature part, and a planted bend."""
from __future__ import annotations

import itertools

import pytest
import torch

from sdl_paper.theory import exact_loss as ex
from sdl_paper.theory import regions as rg
from sdl_paper.theory.activations import make_activation


def test_the_law_enumerates_every_code_once_with_probabilities_summing_to_one():
    X, P = ex.binary_law(5, 0.2)
    assert X.shape == (32, 5) and len({tuple(r) for r in X.tolist()}) == 32
    assert abs(P.sum().item() - 1) < 1e-12
    assert P[0].item() == pytest.approx(0.8 ** 5) and P[-1].item() == pytest.approx(0.2 ** 5)


@pytest.mark.parametrize("bad", [dict(n=0, p=0.5), dict(n=17, p=0.5), dict(n=3, p=0.0), dict(n=3, p=1.0)])
def test_bad_sizes_and_probabilities_are_refused(bad):
    with pytest.raises(ValueError, match="allowed|must lie"):
        ex.binary_law(**bad)


def test_line_losses_equal_a_direct_sum_and_the_one_feature_part_is_l_tilde():
    g = torch.Generator().manual_seed(0)
    W_p = torch.nn.functional.normalize(torch.randn(3, 4, generator=g, dtype=torch.float64), dim=0)
    W_r = torch.nn.functional.normalize(torch.randn(2, 4, generator=g, dtype=torch.float64), dim=0)
    W_E, W_D = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(2, 5, generator=g, dtype=torch.float64)
    dE, relu, p = torch.randn(5, 3, generator=g, dtype=torch.float64), make_activation("relu"), 0.3
    out = ex.line_sdl_losses(W_E, W_D, W_p, W_r, relu, p, torch.tensor([0.0, 0.7], dtype=torch.float64), dE)
    for j, t in enumerate((0.0, 0.7)):
        E, total, single = W_E + t * dE, 0.0, 0.0
        for bits in itertools.product((0.0, 1.0), repeat=4):
            x = torch.tensor(bits, dtype=torch.float64)
            cost = (W_r @ x - W_D @ torch.relu(E @ W_p @ x)).pow(2).sum().item()
            weight = p ** x.sum().item() * (1 - p) ** (4 - x.sum().item())
            total += weight * cost
            single += weight * cost if x.sum() == 1 else 0.0
        assert out["L_SDL"][j].item() == pytest.approx(total, rel=1e-12)
        assert out["L_tilde"][j].item() == pytest.approx(single, rel=1e-12)


def test_a_planted_bend_inside_one_region_is_found():
    # e1, e2 in the plane; one ReLU latent with row (1, b), b in (-2, -0.1): the pattern ({1}) is fixed, but the
    # input e1 + e2 switches the latent on at b = -1, and with decoder (1, 1) the loss bends downwards there.
    W = torch.eye(2, dtype=torch.float64)
    W_E, W_D = torch.tensor([[1.0, -1.05]], dtype=torch.float64), torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    dE, relu = torch.tensor([[0.0, 1.0]], dtype=torch.float64), make_activation("relu")
    ts = torch.linspace(-0.9, 0.9, 181, dtype=torch.float64)
    out = ex.line_sdl_losses(W_E, W_D, W, W, relu, 0.5, ts, dE)
    assert (rg.line_patterns(W_E, dE, relu, W, ts) == rg.pattern(W_E, relu, W)).all()
    sd = rg.second_differences(out["L_SDL"])
    assert sd.min() < -1e-3 and abs(ts[int(sd.argmin()) + 1].item() - 0.05) < 0.011    # at b = -1
    assert rg.second_differences(out["L_tilde"]).min() > -1e-12


def test_the_search_reports_the_bend_of_a_region_and_no_bend_for_one_feature():
    W = torch.eye(2, dtype=torch.float64)
    W_E, W_D = torch.tensor([[1.0, -1.05]], dtype=torch.float64), torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    r = ex.region_line_search(W_E, W_D, W, W, make_activation("relu"), 0.5, 50, torch.Generator().manual_seed(0))
    assert r["pattern_kept"] and r["lines"] > 0 and r["sd_tilde"] > -1e-12
    assert r["sd_sdl"] < -1e-6 and r["bend_at_switch"]
    one = torch.ones(1, 1, dtype=torch.float64)        # one feature: no multi-feature input, no bend
    r1 = ex.region_line_search(one, one, one, one, make_activation("relu"), 0.5, 20, torch.Generator().manual_seed(0))
    assert r1["sd_sdl"] > -1e-12
