import pytest
import torch

from sdl_paper import Config, Dictionary, train
from sdl_paper.model import dictionary as D
from sdl_paper.model.config import FIELDS
from sdl_paper.data import ground_truth


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


@pytest.mark.parametrize("kw, match", [
    (dict(resample_at=(100,)), "only apply with remedy='resample'"),
    (dict(resample_every=50, remedy="auxk"), "only apply with remedy='resample'"),
    (dict(aux_k=8), "only applies with remedy='auxk'"),
    (dict(prefixes=(4, 8)), "only apply to method='matryoshka'"),
    (dict(method="matryoshka", prefixes=(8, 4)), "strictly increasing"),
    (dict(method="topk", activation="relu"), "only with method='relu'"),
    (dict(method="relu", activation="sparkle"), "unknown activation"),
    (dict(method="gated"), "allowed: relu"),
])
def test_config_refuses_settings_that_would_be_ignored_or_cannot_run(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)


@pytest.mark.parametrize("kw, n_q, seeds, match", [
    (dict(k=20), 16, [0], "k=20 exceeds the number of latents n_q=16"),
    (dict(method="matryoshka", prefixes=(8, 32)), 16, [0], "exceed n_q=16"),
    (dict(method="relu", activation="topk:32"), 16, [0], "more latents than n_q=16"),
    (dict(anchors=2), 16, [0], "anchors are missing"),
])
def test_train_refuses_sizes_that_cannot_run_before_any_step(kw, n_q, seeds, match):
    with pytest.raises(ValueError, match=match):
        train(_gt(), Config(steps=5, **kw), n_q, seeds, progress=False)


def test_seeds_must_be_a_list_and_a_missing_gpu_is_named():
    with pytest.raises(TypeError, match="non-empty list of ints"):
        train(_gt(), Config(steps=5), 16, 3, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            train(_gt(), Config(steps=5), 16, [0], device="cuda", progress=False)
    with pytest.raises(TypeError, match="must be an int"):
        Config(k=2.5)


def test_help_shows_every_field_with_its_meaning():
    doc = Config.__doc__
    for name in FIELDS:
        assert f"{name}:" in doc or f" {name}: " in doc, f"Config field {name} is not documented"


@pytest.mark.parametrize("cfg", [Config(k=2), Config(method="jumprelu"), Config(method="relu", tied=True),
                                 Config(method="batchtopk", k=2), Config(method="relu", activation="relu>topk:1")])
def test_to_sdl_and_from_sdl_are_inverse_and_compute_the_same_codes(cfg):
    state = train(_gt(), Config(**(cfg.to_dict() | {"steps": 10, "batch_size": 16})), 16, [0], progress=False)
    run_cfg = Config.from_dict(state.config)
    model = D.to_sdl(state.params, run_cfg)
    x = torch.randn(32, 8)
    assert torch.allclose(model.encode(x), Dictionary.from_state(state).encode(x), atol=1e-6)
    back = D.from_sdl(model, run_cfg)
    assert all(torch.allclose(back[k], state.params[k]) for k in state.params)


def test_config_round_trips_through_a_dict_and_refuses_unknown_keys():
    cfg = Config(method="matryoshka", prefixes=(2, 8), k=2)
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown Config fields"):
        Config.from_dict({"d_sae": 16})


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
    cfg = Config.standard(method, k=2, steps=20, batch_size=32)
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
        z = h * (h > D.thresholds(P)[0]) if method == "jumprelu" else torch.relu(h)
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


def test_gradient_clipping_is_per_model():
    from sdl_paper.training.optim import clip_per_model

    params = {"W": torch.zeros(2, 3, requires_grad=True)}
    params["W"].grad = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]])   # norms 5 and 0.5
    clip_per_model(params, 1.0)
    assert torch.allclose(params["W"].grad.norm(dim=1), torch.tensor([1.0, 0.5]), atol=1e-5)


def test_gradient_clipping_of_one_model_equals_its_slice_of_a_batch():
    from sdl_paper.training.optim import clip_per_model

    g = torch.Generator().manual_seed(0)
    grads = {"W_E": 3 * torch.randn(2, 5, 4, generator=g), "W_D": torch.randn(2, 5, 4, generator=g).transpose(1, 2)}
    batch = {n: torch.zeros(2, *v.shape[1:]).requires_grad_(True) for n, v in grads.items()}
    alone = {n: torch.zeros(1, *v.shape[1:]).requires_grad_(True) for n, v in grads.items()}
    for n in grads:
        batch[n].grad, alone[n].grad = grads[n].clone(), grads[n][:1].clone()
    clip_per_model(batch, 1.0)
    clip_per_model(alone, 1.0)                      # K = 1: torch's clip_grad_norm_
    for n in grads:
        assert torch.allclose(alone[n].grad[0], batch[n].grad[0], atol=1e-6), n
    total = torch.sqrt(sum(alone[n].grad.pow(2).sum() for n in grads))
    assert torch.isclose(total, torch.tensor(1.0), atol=1e-5)
