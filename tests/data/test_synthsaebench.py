"""The SynthSAEBench-style world: its forest, probabilities and sampling rules, checked on small sizes."""
import math

import pytest
import torch

from sdl_paper.data.synthsaebench import SynthConfig, SynthSource, SynthWorld, forest, zipf_probabilities

SMALL = dict(n=64, n_p=32, roots=2, branching=2, depth=2, correlation_rank=4, orthogonalize_steps=20)


def test_the_forest_is_numbered_level_by_level():
    parent, level = forest(SynthConfig(**SMALL))
    assert parent[:2].tolist() == [-1, -1] and level[:2].tolist() == [0, 0]
    assert parent[2:6].tolist() == [0, 0, 1, 1] and (level[2:6] == 1).all()
    assert parent[6:14].tolist() == [2, 2, 3, 3, 4, 4, 5, 5] and (level[6:14] == 2).all()
    assert (parent[14:] == -1).all() and (level[14:] == -1).all()
    with pytest.raises(ValueError, match="forest holds"):
        SynthConfig(**(SMALL | {"n": 10}))


def test_zipf_probabilities_span_p_max_to_p_min_and_fall():
    p = zipf_probabilities(SynthConfig(**SMALL))
    assert p[0].item() == pytest.approx(0.4) and p[-1].item() == pytest.approx(5e-4) and (p.diff() <= 0).all()


def test_children_fire_only_with_their_parent_and_one_sibling_at_a_time():
    world = SynthWorld(SynthConfig(**SMALL))
    x, x_p = world.sample(4000, torch.Generator().manual_seed(0))
    on = x > 0
    for p, c in world.edges():
        assert not (on[:, c] & ~on[:, p]).any(), f"child {c} fired without parent {p}"
    kids = (world.parent >= 0).nonzero().flatten()
    for p in world.parent[kids].unique():
        siblings = (world.parent == p).nonzero().flatten()
        assert on[:, siblings].sum(1).max() <= 1, f"two children of {int(p)} fired together"
    assert torch.allclose(x_p, x @ world.W_p.T + world.b)
    assert world.b.norm().item() == pytest.approx(0.5, rel=1e-5)


def test_free_features_fire_at_their_probability():
    world = SynthWorld(SynthConfig(**SMALL))
    x, _ = world.sample(20000, torch.Generator().manual_seed(1))
    free = (world.level == -1).nonzero().flatten()[:8]          # the most frequent free features
    rate, p = (x[:, free] > 0).double().mean(0), world.p[free]
    se = (p * (1 - p) / 20000).sqrt()
    assert ((rate - p).abs() < 5 * se).all()


def test_scaling_children_by_parent_multiplies_them_by_parent_over_its_mean():
    on, off = (SynthWorld(SynthConfig(**SMALL, scale_children_by_parent=s)) for s in (True, False))
    x_on, _ = on.sample(2000, torch.Generator().manual_seed(2))
    x_off, _ = off.sample(2000, torch.Generator().manual_seed(2))   # the same random numbers
    for p, c in on.edges():
        if on.level[p] == 0:                                      # a root's value is not rescaled itself
            expected = x_off[:, c] * x_off[:, p] / on.mean[p].float()
            assert torch.allclose(x_on[:, c], expected, atol=1e-5)


def test_orthogonalisation_lowers_interference_and_the_world_is_deterministic():
    cfg = SynthConfig(**SMALL)
    raw = SynthWorld(SynthConfig(**SMALL | {"orthogonalize_steps": 0}))
    done = SynthWorld(cfg)
    off = lambda W: (W.T @ W - torch.eye(W.shape[1])).abs().max().item()        # noqa: E731
    assert off(done.W_p) < off(raw.W_p)
    assert torch.allclose(done.W_p.norm(dim=0), torch.ones(cfg.n), atol=1e-5)
    again = SynthWorld(cfg)
    assert torch.equal(done.W_p, again.W_p)
    a, b = (w.sample(64, torch.Generator().manual_seed(3))[0] for w in (done, again))
    assert torch.equal(a, b)


def test_the_source_trains():
    from sdl_paper import Config, train

    source = SynthSource(SynthWorld(SynthConfig(**SMALL)))
    state = train(source, Config.theory(k=4, steps=20, batch_size=64, bias=True), 32, [0], progress=False, device="cpu")
    assert state.step == 20 and math.isfinite(state.history[-1]["loss"][0])


def test_the_control_world_keeps_directions_and_magnitudes_and_drops_the_forest():
    world = SynthWorld(SynthConfig(n=40, n_p=16, roots=2, branching=2, depth=2, orthogonalize_steps=0))
    ctrl = world.without_hierarchy()
    assert torch.equal(ctrl.W_p, world.W_p) and torch.equal(ctrl.mean, world.mean) and ctrl.edges() == []
    assert world.edges() and torch.equal(ctrl.p, zipf_probabilities(ctrl.cfg))
    x, _ = ctrl.sample(40000, torch.Generator().manual_seed(0))
    rate = (x > 0).float().mean(0).double()
    se = (ctrl.p * (1 - ctrl.p) / 40000).sqrt()
    assert ((rate - ctrl.p).abs() < 5 * se + 1e-3).all()          # every feature at its own probability
    child, parent = world.edges()[-1][1], world.edges()[-1][0]
    assert bool(((x[:, child] > 0) & (x[:, parent] == 0)).any())   # a child now fires without its parent


def test_a_control_with_the_worlds_marginals_keeps_every_firing_rate_and_l0():
    world = SynthWorld(SynthConfig(n=40, n_p=16, roots=2, branching=2, depth=2, orthogonalize_steps=0))
    rates = world.firing_rates(40000, seed=1)
    ctrl = world.without_hierarchy(rates)
    x, _ = ctrl.sample(40000, torch.Generator().manual_seed(2))
    se = (rates * (1 - rates) / 40000).sqrt() * 2 ** 0.5
    assert (((x > 0).double().mean(0) - rates).abs() < 5 * se + 1e-3).all()
    assert not torch.allclose(rates, world.without_hierarchy().p)     # the Zipf default differs
    with pytest.raises(ValueError, match="must hold 40 probabilities"):
        world.without_hierarchy(torch.ones(3))
