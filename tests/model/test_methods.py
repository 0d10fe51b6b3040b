"""The registry of methods (sdl_paper.model.methods): each method's codes are its theory activation's, its penalty
and firing rule are the documented ones, and a new method is one registry entry that trains end to end."""
import pytest
import torch

from sdl_paper import Config, train
from sdl_paper.data import ground_truth
from sdl_paper.io.saelens import EXPORTABLE
from sdl_paper.model import methods
from sdl_paper.model.dictionary import init_params
from sdl_paper.theory.activations import make_activation


def _z(K=2, B=5, n_q=7, seed=0):
    return torch.randn(K, B, n_q, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_a_methods_codes_are_its_theory_activation_applied_model_by_model(name):
    cfg = Config.theory(method=name, **({"k": 2} if methods.METHODS[name].uses_k else {}))
    m, z = cfg.impl, _z()
    params = init_params(2, 3, 7, 3, cfg, [0, 1])
    sigma = make_activation(m.sigma_spec(cfg))          # jumprelu: theta_init, the initial thresholds
    expected = torch.stack([sigma(z[k]) for k in range(z.shape[0])])
    assert torch.allclose(m.activate(z, params, cfg), expected, atol=1e-7)
    assert (m.activate(z, params, cfg) != 0).sum() > 0


def test_an_unknown_method_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="method='gated'; allowed: relu, relu_dec, jumprelu, topk, batchtopk"):
        methods.get("gated")


def test_penalties_are_the_documented_ones():
    z = _z(K=1)
    a = torch.relu(z)
    params = {"W_D": torch.full((1, 3, 7), 0.5)}                      # decoder columns of norm sqrt(3)/2
    l1 = Config.theory(method="relu", l1=0.1)
    assert torch.allclose(methods.get("relu").penalty(z, a, params, l1), 0.1 * a.sum(-1).mean(1))
    dec = Config.theory(method="relu_dec", l1=0.1).replace()
    assert torch.allclose(methods.get("relu_dec").penalty(z, a, params, dec),
                          0.1 * 3 ** 0.5 / 2 * a.sum(-1).mean(1))
    assert methods.get("topk").penalty(z, a, params, Config.theory()) is None


def test_firing_thresholds_per_method():
    z = torch.tensor([[3.0, 1.0, 2.0, -1.0]])
    own = torch.tensor([1])
    assert methods.get("relu").firing_threshold(z, own, None, Config.theory(method="relu")).item() == 0
    # the 2nd largest of the others
    assert methods.get("topk").firing_threshold(z, own, None, Config.theory(k=2)).item() == 2.0
    assert methods.get("topk").firing_threshold(-z.abs(), own, None, Config.theory(k=2)).item() == 0   # negatives: 0
    params = {"log_theta": torch.log(torch.tensor([[0.1, 0.7, 0.2, 0.3]]))}
    assert methods.get("jumprelu").firing_threshold(z, own, params, Config.theory(method="jumprelu")).item() == \
        pytest.approx(0.7)


def test_matryoshka_reconstructs_every_prefix_mean_in_theory_and_sum_in_standard_practice():
    from sdl_paper.model.dictionary import decode
    a, x_r = torch.relu(_z(K=1, n_q=8)), torch.randn(1, 5, 3)
    params = {"W_D": torch.randn(1, 3, 8)}
    per = [(x_r - decode({"W_D": params["W_D"][..., :m]}, a[..., :m])).pow(2).sum(-1).mean(1) for m in (2, 8)]
    m = methods.get("matryoshka")
    assert torch.allclose(m.reconstruction(x_r, None, a, params, Config.theory(method="matryoshka", prefixes=(2, 8)),
                                           decode), (per[0] + per[1]) / 2)
    std = Config.standard("matryoshka", prefixes=(2, 8))      # codes divided by decoder norms before decoding
    params |= {"b_D": torch.zeros(1, 3)}
    per = [(x_r - decode({**params, "W_D": params["W_D"][..., :m]}, a[..., :m], std)).pow(2).sum(-1).mean(1)
           for m in (2, 8)]
    assert torch.allclose(m.reconstruction(x_r, None, a, params, std, decode), per[0] + per[1], atol=1e-6)


def test_saelens_names_come_from_the_registry():
    assert EXPORTABLE == ("relu", "relu_dec", "jumprelu", "topk", "matryoshka_k")   # the last: TopK codes
    assert all(methods.get(n).saelens is None for n in ("batchtopk", "matryoshka"))


class _Squared(methods.Method):
    """A made-up method: ReLU codes with an L2 penalty, defined only here."""

    name = "relu_l2"

    def penalty(self, z, a, params, cfg):
        return methods.per_model(cfg.l1, a) * a.pow(2).sum(-1).mean(1)


def test_a_new_method_is_one_registry_entry(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "relu_l2", _Squared())
    gt = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])
    cfg = Config.theory(method="relu_l2", l1=0.5, steps=30, batch_size=32, lr=1e-2)
    state = train(gt, cfg, 16, [0], progress=False)
    losses = [h["loss"][0] for h in state.history]
    assert state.step == 30 and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="allowed: .*relu_l2"):
        Config.theory(method="gated")


def test_the_papers_matryoshka_averages_topk_reconstructions_over_its_k_levels():
    cfg = Config.theory(method="matryoshka_k", k=3, k_levels=(1, 3))
    params = init_params(2, 4, 7, 4, cfg, [0, 1])
    x = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(1))
    from sdl_paper.model.dictionary import decode, encode
    z, a = encode(params, x, cfg)
    top1 = z * (z >= z.max(-1, keepdim=True).values) * (z > 0)          # the one largest positive, by hand
    err = [(x - decode(params, c, cfg)).pow(2).sum(-1).mean(1) for c in (top1, a)]
    got = cfg.impl.reconstruction(x, decode(params, a, cfg), a, params, cfg, decode)
    assert torch.allclose(got, (err[0] + err[1]) / 2, atol=1e-6)
    # one level, k itself: TopK's loss
    one = Config.theory(method="matryoshka_k", k=3, k_levels=(3,))
    assert torch.allclose(one.impl.reconstruction(x, decode(params, a, one), a, params, one, decode), err[1])
    assert methods.k_levels(Config.theory(method="matryoshka_k", k=6)) == (2, 3, 6)


def test_k_levels_belong_to_the_papers_matryoshka_and_end_at_k():
    with pytest.raises(ValueError, match="k_levels only apply to method='matryoshka_k'"):
        Config.theory(method="topk", k=4, k_levels=(2, 4))
    with pytest.raises(ValueError, match="ending at k=4"):
        Config.theory(method="matryoshka_k", k=4, k_levels=(1, 2))
    with pytest.raises(ValueError, match="strictly increasing"):
        Config.theory(method="matryoshka_k", k=4, k_levels=(2, 2, 4))
