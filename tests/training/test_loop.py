import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.data.arrays import as_source
from sdl_paper.model.config import REMEDIES
from sdl_paper.theory.activations import topk_mask
from sdl_paper.model import Config, METHODS, evaluate
from sdl_paper.training import TrainingDiverged, init_state, load_checkpoint, objective, train
from sdl_paper.training.resampling import resample


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


def _gt64():
    world = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0)
    return ground_truth.World([w.double() for w in world.layers], world.coefficients).view([0], [0])


def _cfg(**kw):
    base = dict(steps=60, batch_size=32, lr=1e-2, k=2, log_every=10, dead_window=10)
    method = METHODS.get(kw.get("method", "topk"))
    if method is not None and not method.uses_k:           # k is refused where it has no effect
        base.pop("k")
    if kw.get("remedy") == "resample":
        base["resample_at"] = (30,)
    return Config.theory(**(base | kw))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("remedy", REMEDIES)
def test_every_method_and_remedy_trains_and_is_deterministic(method, remedy):
    gt, cfg = _gt(), _cfg(method=method, remedy=remedy)
    before = evaluate(init_state(2, 8, 16, 8, cfg, [0, 1]).params, gt, cfg)
    a = train(gt, cfg, 16, [0, 1], progress=False)
    b = train(gt, cfg, 16, [0, 1], progress=False)
    assert a.params["W_E"].shape == (2, 16, 8) and a.params["W_D"].shape == (2, 8, 16)
    after = evaluate(a.params, gt, cfg)
    assert (after < before).all(), f"{method}/{remedy}: loss did not decrease {before} -> {after}"
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)


def test_batched_models_equal_separate_runs(float64):
    gt, cfg = _gt64(), _cfg(method="topk", remedy="auxk")
    batched = train(gt, cfg, 16, [3, 4, 5], progress=False)
    for i, seed in enumerate([3, 4, 5]):
        alone = train(gt, cfg, 16, [seed], progress=False)
        for k in alone.params:
            assert alone.params[k].dtype == torch.float64, k
            assert torch.allclose(batched.params[k][i], alone.params[k][0], rtol=1e-9, atol=1e-10), k


def test_a_killed_run_resumes_to_the_same_numbers_as_an_uninterrupted_one(tmp_path):
    gt, cfg = _gt(), _cfg(method="batchtopk", remedy="resample")
    full = train(gt, cfg, 16, [0, 1], progress=False)
    ckpt = str(tmp_path / "run.pt")

    def kill(state, codes):
        if state.step == 27:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(gt, cfg, 16, [0, 1], progress=False, checkpoint=ckpt, checkpoint_every=5, callback=kill)
    state = load_checkpoint(ckpt)
    assert state.step == 25
    resumed = train(gt, cfg, 16, [0, 1], state=state, progress=False)
    assert resumed.step == full.step == 60
    assert all(torch.equal(full.params[k], resumed.params[k]) for k in full.params)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]


def test_resampling_rewrites_dead_latents_and_resets_only_their_adam_state():
    gt, cfg = _gt(), _cfg(method="topk", remedy="resample", bias=True)
    state = train(gt, _cfg(method="topk", bias=True, steps=20), 16, [0], progress=False)
    state.adam_m = {k: v + 0.5 for k, v in state.adam_m.items()}     # make every moment visibly non-zero
    state.adam_v = {k: v + 0.5 for k, v in state.adam_v.items()}
    dead = torch.zeros(16, dtype=torch.bool)
    dead[[2, 7, 11]] = True
    state.last_fired[0] = torch.where(dead, torch.tensor(-100), torch.tensor(state.step))
    before = {k: v.clone() for k, v in state.params.items()}
    m_before = {k: v.clone() for k, v in state.adam_m.items()}
    assert resample(state, gt, cfg) == [3]
    W_E, W_D = state.params["W_E"][0], state.params["W_D"][0]
    assert not torch.allclose(W_E[dead], before["W_E"][0][dead])                      # really changed
    assert torch.equal(W_E[~dead], before["W_E"][0][~dead])                            # others untouched
    assert torch.allclose(W_D[:, dead].norm(dim=0), torch.ones(3))                     # unit decoder columns
    alive_norm = before["W_E"][0][~dead].norm(dim=1).mean()
    assert torch.allclose(W_E[dead].norm(dim=1), 0.2 * alive_norm.expand(3))          # 0.2 x mean alive norm
    assert (state.params["b_E"][0][dead] == 0).all()
    for moments in (state.adam_m, state.adam_v):
        assert (moments["W_E"][0][dead] == 0).all() and (moments["W_D"][0][:, dead] == 0).all()
        assert (moments["W_E"][0][~dead] != 0).all() and (moments["W_D"][0][:, ~dead] != 0).all()
    assert torch.equal(state.adam_m["b_D"], m_before["b_D"])
    assert (state.last_fired[0][dead] == state.step).all()


def test_auxk_sends_gradient_to_dead_latents_only_through_the_aux_term():
    gt, cfg = _gt(), _cfg(method="topk", remedy="auxk")
    state = init_state(1, 8, 16, 8, cfg, [0])
    x_p, x_r = as_source(gt).sample(state.generators, 64, "cpu")
    dead = torch.zeros(1, 16, dtype=torch.bool)
    dead[0, :4] = True
    W_E = state.params["W_E"].requires_grad_(True)
    terms = objective(state.params, x_p, x_r, cfg, dead)
    assert terms["aux"].item() > 0
    (g,) = torch.autograd.grad(terms["aux"].sum(), W_E)
    assert g[0, :4].abs().sum() > 0 and (g[0, 4:] == 0).all()


def test_jumprelu_thresholds_learn_through_the_straight_through_estimator():
    gt = _gt()
    state = init_state(1, 8, 16, 8, _cfg(method="jumprelu"), [0])
    x_p, x_r = as_source(gt).sample(state.generators, 256, "cpu")
    theta = state.params["log_theta"].requires_grad_(True)
    terms = objective(state.params, x_p, x_r, _cfg(method="jumprelu", l0=1.0, bandwidth=0.5))
    (g,) = torch.autograd.grad(terms["penalty"].sum(), theta)
    assert (g <= 0).all() and g.sum() < 0      # a larger threshold lowers L0


def test_divergence_names_the_step_and_the_model():
    gt = _gt()
    gt.W_p = gt.W_p.clone()
    gt.W_p[0, 0] = float("inf")
    with pytest.raises(TrainingDiverged, match="at step 0"):
        train(gt, _cfg(), 16, [0], progress=False)


@pytest.mark.parametrize("kw,match", [({"method": "gelu"}, "method="), ({"remedy": "ghost"}, "remedy="),
                                      ({"k": 0}, "k=0"), ({"lr": 0.0}, "lr")])
def test_bad_configs_fail_before_training(kw, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)


@pytest.mark.parametrize("remedy", ["none", "auxk"])
@pytest.mark.parametrize("bias,practice", [(False, "theory"), (True, "theory"), (True, "standard")])
def test_sparse_topk_path_gives_the_dense_gradients(remedy, bias, practice):
    torch.manual_seed(0)
    K, B, n_q, n_p = 2, 64, 16, 8
    params = {"W_E": torch.randn(K, n_q, n_p), "W_D": torch.randn(K, n_p, n_q)}
    if bias:
        params |= {"b_E": torch.randn(K, n_q), "b_D": torch.randn(K, n_p)}
    params["W_D"] = params["W_D"] * (0.5 + torch.rand(K, 1, n_q))      # decoder norms matter in standard practice
    x = torch.randn(K, B, n_p)
    dead = torch.rand(K, n_q) < 0.5
    grads = []
    for sparse in (False, True):
        P = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        cfg = Config(method="topk", k=3, sparse=sparse, bias=bias, remedy=remedy, practice=practice)
        terms = objective(P, x, x, cfg, dead)
        terms["total"].sum().backward()
        grads.append(({k: v.grad for k, v in P.items()}, terms))
    (gd, td), (gs, ts) = grads
    for k in gd:
        assert torch.allclose(gd[k], gs[k], rtol=1e-5, atol=1e-5), k
    for k in ("total", "L0"):
        assert torch.allclose(td[k], ts[k], rtol=1e-6), k
    assert torch.equal(td["fired"], ts["fired"])


def test_sparse_topk_path_trains_like_the_dense_one(float64):
    # measured difference 6e-16 after 200 steps; last_fired equal: every latent last fired at the same step
    gt = _gt64()
    dense, sparse = [train(gt, _cfg(method="topk", remedy="auxk", sparse=s, bias=True, steps=200), 16, [0, 1],
                           progress=False) for s in (False, True)]
    for k in dense.params:
        assert dense.params[k].dtype == torch.float64, k
        assert torch.allclose(dense.params[k], sparse.params[k], rtol=1e-9, atol=1e-10), k
    assert torch.equal(dense.last_fired, sparse.last_fired)


@pytest.mark.parametrize("method", ["relu", "topk", "batchtopk"])
@pytest.mark.parametrize("remedy", REMEDIES)
def test_tied_sae_shares_one_matrix_and_trains(method, remedy):
    gt, cfg = _gt(), _cfg(method=method, remedy=remedy, tied=True)
    before = evaluate(init_state(2, 8, 16, 8, cfg, [0, 1]).params, gt, cfg)
    s = train(gt, cfg, 16, [0, 1], progress=False)
    assert set(s.params) == {"W_E"} | ({"W_aux"} if remedy == "auxk_input" else set())
    assert (evaluate(s.params, gt, cfg) < before).all()
    assert torch.allclose(s.params["W_E"].norm(dim=2), torch.ones(2, 16), atol=1e-5)   # unit decoder columns


def test_tied_needs_n_r_equal_to_n_p():
    crosscoder = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=2, seed=0).view([0], [0, 1])    # n_r = 16, n_p = 8
    with pytest.raises(ValueError, match="tied=True needs n_r = n_p"):
        train(crosscoder, _cfg(tied=True), 16, [0], progress=False)


def test_metric_histories_are_logged_at_the_interval_and_match_a_direct_computation():
    from sdl_paper.theory import metrics, regions
    gt = _gt()
    s = train(gt, _cfg(method="topk", track_every=20), 16, [0, 1], progress=False)
    assert [t["step"] for t in s.tracked] == [0, 20, 40, 59]
    last = s.tracked[-1]["models"][1]
    W_E, W_D = s.params["W_E"][1], s.params["W_D"][1]
    assert last["M_IP_enc"] == pytest.approx(metrics.max_inner_product(gt.W_p, encoder=W_E))
    assert last["M_GT_dec"] == pytest.approx(metrics.gt_recovery(gt.W_r, decoder=W_D))
    F = regions.pattern(W_E, lambda z: z * topk_mask(z, 2), gt.W_p)
    assert {k: last[k] for k in ("pattern_dead", "monosemantic", "polysemantic")} == regions.pattern_counts(F)
    assert sum(last[k] for k in ("pattern_dead", "monosemantic", "polysemantic")) == 16


@pytest.mark.parametrize("method", METHODS)
def test_bf16_autocast_trains_close_to_fp32(method):
    # The bf16 path runs under CPU autocast here (the same code path CUDA takes); parameters and Adam stay fp32.
    gt = _gt()
    a = train(gt, _cfg(method=method, amp="bf16", steps=40), 16, [0], progress=False)
    b = train(gt, _cfg(method=method, steps=40), 16, [0], progress=False)
    assert all(p.dtype == torch.float32 for p in a.params.values())
    assert not torch.equal(a.params["W_E"], b.params["W_E"])          # the bf16 path really ran
    la, lb = evaluate(a.params, gt, _cfg(method=method)), evaluate(b.params, gt, _cfg(method=method))
    before = evaluate(init_state(1, 8, 16, 8, _cfg(method=method), [0]).params, gt, _cfg(method=method))
    assert (la < before).all() and torch.allclose(la, lb, rtol=0.25), (la, lb, before)


@pytest.mark.parametrize("method,field", [("relu", "l1"), ("jumprelu", "l0"), ("topk", "lr"), ("topk", "init_scale"),
                                          ("topk", "anchor_coef")])
def test_per_model_hyperparameters_train_as_separate_runs(method, field, float64):
    gt = _gt64()
    values = (0.5e-3, 3e-3) if field in ("l1", "l0", "lr") else (0.3, 1.0)
    extra = {"anchors": 2} if field == "anchor_coef" else {}
    anchors = {"A_p": gt.W_p[:, :2].T.clone(), "A_r": gt.W_r[:, :2].clone()} if extra else None
    both = train(gt, _cfg(method=method, steps=20, **extra, **{field: values}), 16, [3, 4], anchors=anchors,
                   progress=False)
    for i, (seed, v) in enumerate(zip([3, 4], values)):
        one = train(gt, _cfg(method=method, steps=20, **extra, **{field: v}), 16, [seed], anchors=anchors,
                      progress=False)
        for k in one.params:
            assert torch.allclose(both.params[k][i], one.params[k][0], rtol=1e-9, atol=1e-10), (k, i)
    # the two values do make a difference (the comparison above could not pass by ignoring one of them); JumpReLU's
    # l0 acts on the thresholds (log_theta), which in 20 steps move no sample across and so leave W_E as it is
    other = train(gt, _cfg(method=method, steps=20, **extra, **{field: values[1]}), 16, [3], anchors=anchors,
                    progress=False)
    assert any(not torch.allclose(both.params[k][0], other.params[k][0], atol=1e-4) for k in other.params)


def test_per_model_anchors_train_as_separate_runs_and_bad_shapes_are_refused(float64):
    gt = _gt64()
    A = [{"A_p": gt.W_p[:, i:i + 2].T.clone(), "A_r": gt.W_r[:, i:i + 2].clone()} for i in (0, 2)]
    cfg = _cfg(method="topk", steps=20, anchors=2, anchor_coef=1.0)
    both = train(gt, cfg, 16, [3, 4], anchors={n: torch.stack([a[n] for a in A]) for n in ("A_p", "A_r")},
                 progress=False)
    for i, seed in enumerate([3, 4]):
        one = train(gt, cfg, 16, [seed], anchors=A[i], progress=False)
        for k in one.params:
            assert torch.allclose(both.params[k][i], one.params[k][0], rtol=1e-9, atol=1e-10), (k, i)
    # the anchors do make a difference: model 0 trained towards the other anchors differs
    other = train(gt, cfg, 16, [3], anchors=A[1], progress=False)
    assert not torch.allclose(both.params["W_E"][0], other.params["W_E"][0], atol=1e-4)
    with pytest.raises(ValueError, match=r"per model A_p \(2, 2, 8\)"):
        train(gt, cfg, 16, [3, 4], anchors={n: torch.stack([a[n]] * 3) for n, a in zip(("A_p", "A_r"), A)},
              progress=False)


def test_per_model_hyperparameters_are_checked():
    with pytest.raises(TypeError, match="one per model"):
        _cfg(lr=(1e-3, "a"))
    with pytest.raises(ValueError, match="must be > 0"):
        _cfg(lr=(1e-3, -1.0))
    with pytest.raises(ValueError, match="lr has 3 values but 2 models"):
        train(_gt(), _cfg(lr=(1e-3, 2e-3, 3e-3), steps=2), 16, [0, 1], progress=False)
    cfg = _cfg(l1=[0.1, 0.2])
    assert cfg.l1 == (0.1, 0.2) and Config.from_dict(cfg.to_dict()) == cfg


def test_the_papers_auxk_decodes_the_input_by_its_own_decoder():
    # remedy auxk_input (the paper's eq. 8): aux = coef * mean_b ||x_p - W_aux a_dead||^2, with a_dead the k_aux
    # largest positive pre-activations among the dead latents; W_aux is a separate decoder: W_D gets no gradient
    gt, cfg = _gt(), _cfg(method="topk", remedy="auxk_input", aux_k=3, aux_coef=0.5)
    state = init_state(1, 8, 16, 8, cfg, [0])
    x_p, x_r = as_source(gt).sample(state.generators, 64, "cpu")
    dead = torch.zeros(1, 16, dtype=torch.bool)
    dead[0, :6] = True
    P = {k: v.clone().requires_grad_(True) for k, v in state.params.items()}
    terms = objective(P, x_p, x_r, cfg, dead)
    z = (x_p[0] @ P["W_E"][0, :6].T).detach()
    a = z * topk_mask(z, 3) * (z > 0)
    by_hand = 0.5 * (x_p[0] - a @ P["W_aux"][0, :, :6].detach().T).pow(2).sum(-1).mean()
    assert torch.allclose(terms["aux"][0], by_hand, rtol=1e-5)
    g_E, g_D, g_aux = torch.autograd.grad(terms["aux"].sum(), [P["W_E"], P["W_D"], P["W_aux"]], allow_unused=True)
    assert g_E[0, :6].abs().sum() > 0 and (g_E[0, 6:] == 0).all() and g_D is None
    assert g_aux[0, :, :6].abs().sum() > 0 and (g_aux[0, :, 6:] == 0).all()


def test_the_papers_auxk_leaves_the_dictionary_as_without_it():
    # the same initial W_E, W_D as remedy auxk; W_aux is training state, not part of the dictionary
    from sdl_paper.model.dictionary import Dictionary
    gt = _gt()
    paper, gao = (init_state(2, 8, 16, 8, _cfg(method="topk", remedy=r), [0, 1]) for r in ("auxk_input", "auxk"))
    assert set(paper.params) - set(gao.params) == {"W_aux"} and paper.params["W_aux"].shape == (2, 8, 16)
    assert all(torch.equal(paper.params[k], gao.params[k]) for k in gao.params)
    state = train(gt, _cfg(method="topk", remedy="auxk_input"), 16, [0, 1], progress=False)
    assert set(Dictionary.from_state(state).params) == {"W_E", "W_D"}


def test_the_papers_auxk_trains_on_the_dense_path_and_resumes(tmp_path):
    cfg = _cfg(method="topk", remedy="auxk_input")
    assert not cfg.impl.sparse_path(cfg, 4096) and cfg.impl.sparse_path(cfg.replace(remedy="auxk"), 4096)
    full = train(_gt(), cfg, 16, [0], progress=False)
    half = train(_gt(), cfg.replace(steps=30), 16, [0], progress=False, checkpoint=str(tmp_path / "c"))
    resumed = train(_gt(), cfg, 16, [0], state=load_checkpoint(tmp_path / "c"), progress=False)
    assert half.step == 30 and all(torch.equal(full.params[k], resumed.params[k]) for k in full.params)


def test_a_selected_model_continues_as_it_would_have_alone(float64):
    from sdl_paper.training import select
    gt, cfg = _gt64(), _cfg(method="topk", remedy="resample", steps=30, lr=(1e-2, 3e-3, 1e-2))
    full = train(gt, _cfg(method="topk", remedy="resample", lr=3e-3), 16, [1], progress=False)  # 60 steps
    part = train(gt, cfg, 16, [0, 1, 2], progress=False)                                         # 30 steps
    one = select(part, [1])
    assert one.step == 30 and one.seeds == [1] and len(one.history[0]["loss"]) == 1
    assert all(r["model"] == 0 for r in one.resampled)
    resumed = train(gt, _cfg(method="topk", remedy="resample", lr=3e-3), 16, [1], state=one, progress=False)
    for k in full.params:                                                  # batched vs alone: rounding only
        assert torch.allclose(full.params[k], resumed.params[k], rtol=1e-9, atol=1e-10), k
    assert torch.equal(full.last_fired, resumed.last_fired)
    with pytest.raises(ValueError, match="indices of the 3 models"):
        select(part, [3])


def test_bad_sizes_seeds_and_data_are_refused_with_our_message_before_any_work():
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    cfg = Config.theory(k=2, steps=3, batch_size=8)
    for args, match in [((x, cfg, 0, [0]), "n_q=0 must be an int >= 1"),
                        ((x, cfg, 16, [3, 3]), "repeats a seed"),
                        ((torch.randn(0, 8), cfg, 16, [0]), "non-empty"),
                        ((x.long(), cfg, 16, [0]), "2-D float tensor")]:
        with pytest.raises(ValueError, match=match):
            train(*args, progress=False)
    swept = train(x, cfg.replace(lr=(1e-3, 1e-2)), 16, [3, 3], progress=False)   # a sweep may repeat seeds
    assert not torch.equal(swept.params["W_E"][0], swept.params["W_E"][1])
