import pytest
import torch

from sdl_paper import Config, Dictionary, train
from sdl_paper.model import dictionary as D
from sdl_paper.model.methods import METHODS, thresholds
from sdl_paper.data import ground_truth


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


@pytest.mark.parametrize("kw, n_q, seeds, match", [
    (dict(k=20), 16, [0], "k=20 exceeds the number of latents n_q=16"),
    (dict(method="matryoshka", prefixes=(8, 32)), 16, [0], "exceed n_q=16"),
    (dict(method="relu", activation="topk:32"), 16, [0], "more latents than n_q=16"),
    (dict(anchors=2), 16, [0], "anchors are missing"),
])
def test_train_refuses_sizes_that_cannot_run_before_any_step(kw, n_q, seeds, match):
    with pytest.raises(ValueError, match=match):
        train(_gt(), Config.theory(steps=5, **kw), n_q, seeds, progress=False)


def test_seeds_must_be_a_list_and_a_missing_gpu_is_named():
    with pytest.raises(TypeError, match="non-empty list of ints"):
        train(_gt(), Config.theory(steps=5), 16, 3, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            train(_gt(), Config.theory(steps=5), 16, [0], device="cuda", progress=False)
    with pytest.raises(TypeError, match="must be an int"):
        Config.theory(k=2.5)


@pytest.mark.parametrize("cfg", [Config.theory(k=2), Config.theory(method="jumprelu"),
                                 Config.theory(method="relu", tied=True), Config.theory(method="batchtopk", k=2),
                                 Config.theory(method="relu", activation="relu>topk:1")])
def test_to_sdl_and_from_sdl_are_inverse_and_compute_the_same_codes(cfg):
    state = train(_gt(), Config(**(cfg.to_dict() | {"steps": 10, "batch_size": 16})), 16, [0], progress=False)
    run_cfg = Config.from_dict(state.config)
    model = D.to_sdl(state.params, run_cfg)
    x = torch.randn(32, 8)
    assert torch.allclose(model.encode(x), Dictionary.from_state(state).encode(x), atol=1e-6)
    back = D.from_sdl(model, run_cfg)
    assert all(torch.allclose(back[k], state.params[k]) for k in state.params)


def test_standard_practice_is_saelens_forward_pass_and_folds_to_the_plain_form():
    gt = _gt()
    cfg = Config.standard("topk", k=2, steps=30, batch_size=32)
    assert (cfg.lr, cfg.init_scale, cfg.bias, cfg.unit_decoder, cfg.remedy, cfg.aux_coef, cfg.clip_grad) == \
        (3e-4, 0.1, True, False, "auxk", 1.0, 1.0)
    state = train(gt, cfg, 16, [0], progress=False)
    P = {k: v for k, v in state.params.items()}
    P["b_D"] = P["b_D"] + 0.3                                       # a decoder bias that matters
    x = torch.randn(64, 8)
    norms = P["W_D"][0].norm(dim=0)
    h = ((x - P["b_D"][0]) @ P["W_E"][0].T + P["b_E"][0]) * norms   # SAELens: b_dec off the input, rescaled
    v, i = h.topk(2, dim=-1)
    z = torch.zeros_like(h).scatter(-1, i, torch.relu(v))
    x_hat = (z / norms) @ P["W_D"][0].T + P["b_D"][0]
    _, a = D.encode(P, x[None], cfg)
    assert torch.allclose(a[0], z, atol=1e-5) and torch.allclose(D.decode(P, a, cfg)[0], x_hat, atol=1e-5)
    state.params = P
    d = Dictionary.from_state(state)                                # folded: plain form, same numbers
    assert d.cfg.practice == "theory" and d.meta["trained_with"]["practice"] == "standard"
    assert torch.allclose(d.encode(x), z, atol=1e-4) and torch.allclose(d.decode(d.encode(x)), x_hat, atol=1e-4)
    with pytest.raises(ValueError, match="SAELens's 'standard' SAE is relu_dec"):
        Config(method="relu", practice="standard", bias=True)
    with pytest.raises(ValueError, match="no standard practice for method='relu'"):
        Config.standard("relu")


@pytest.mark.parametrize("method", ["batchtopk", "matryoshka", "jumprelu", "relu_dec"])
def test_standard_practice_of_the_other_methods_is_saelens_forward_pass(method):
    gt = _gt()
    k = {"k": 2} if METHODS[method].uses_k else {}       # k is refused where it has no effect
    cfg = Config.standard(method, steps=20, batch_size=32, **k)
    state = train(gt, cfg, 16, [0], progress=False)
    P = dict(state.params)
    P["b_D"] = P["b_D"] + 0.3
    x = torch.randn(64, 8)
    h = (x - P["b_D"][0]) @ P["W_E"][0].T + P["b_E"][0]             # b_dec off the input
    norms = P["W_D"][0].norm(dim=0)
    if method in ("batchtopk", "matryoshka"):                        # rescaled, ReLU, top k*B of the batch
        r = torch.relu(h * norms).flatten()
        z = torch.zeros_like(r).scatter(0, r.topk(2 * 64).indices, r.topk(2 * 64).values).reshape(h.shape)
        x_hat = (z / norms) @ P["W_D"][0].T + P["b_D"][0]
    else:                                                            # no rescaling
        z = h * (h > thresholds(P)[0]) if method == "jumprelu" else torch.relu(h)
        x_hat = z @ P["W_D"][0].T + P["b_D"][0]
    _, a = D.encode(P, x[None], cfg)
    assert torch.allclose(a[0], z, atol=1e-5) and torch.allclose(D.decode(P, a, cfg)[0], x_hat, atol=1e-5)
    state.params = P
    d = Dictionary.from_state(state)
    assert torch.allclose(d.encode(x), z, atol=1e-4) and torch.allclose(d.decode(d.encode(x)), x_hat, atol=1e-4)
    if method == "jumprelu":
        assert (cfg.l0, cfg.theta_init, cfg.bandwidth, cfg.remedy) == (1.0, 0.01, 0.05, "none")
        assert "theta" in state.params and "log_theta" not in state.params    # SAELens trains theta itself
        assert (state.params["theta"] >= 0).all() and not torch.allclose(state.params["theta"],
                                                                       torch.tensor(0.01))


def test_standard_matryoshka_sums_its_prefix_losses_and_a_transcoder_keeps_its_input():
    gt = _gt()
    K, P = 1, train(gt, Config.standard("matryoshka", k=2, steps=5, batch_size=32), 16, [0], progress=False).params
    x = torch.randn(1, 64, 8)
    cfg = Config.standard("matryoshka", k=2, prefixes=(4, 8))
    _, a = D.encode(P, x, cfg)
    parts = [(x - D.decode({**P, "W_D": P["W_D"][..., :m]}, a[..., :m], cfg)).pow(2).sum(-1).mean(1)
             for m in (4, 8, 16)]                                  # SAELens appends d_sae = 16
    from sdl_paper.training.objective import objective
    assert torch.allclose(objective(P, x, x, cfg)["rec"], sum(parts), rtol=1e-5)
    world = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=2, seed=0)
    tc = world.view([0], [1])
    with pytest.raises(ValueError, match="set subtract_b_D=False"):
        train(tc, Config.standard("topk", k=2, steps=2, batch_size=8), 16, [0], progress=False)
    cfg = Config.standard("topk", k=2, steps=2, batch_size=8, subtract_b_D=False)
    P = train(tc, cfg, 16, [0], progress=False).params
    P["b_D"] = P["b_D"] + 0.3
    x = torch.randn(1, 5, 8)
    h = (x[0] @ P["W_E"][0].T + P["b_E"][0]) * P["W_D"][0].norm(dim=0)   # the input is not shifted by b_D
    assert torch.allclose(D.encode(P, x, cfg)[0][0], h, atol=1e-5)
