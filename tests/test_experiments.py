import pytest
import torch

from sdl_paper import absorption as ab, data, experiments as ex, methods, trainer as T


def _gt():
    return methods.get("SAE").view(data.make_world(8, 12, 0.9, 0.3, n_layers=1, seed=0))


def test_recorder_keeps_every_step_and_the_pattern_at_the_interval():
    gt = _gt()
    cfg = T.Config(method="topk", k=2, steps=30, batch_size=32, log_every=10)
    runs = ex.run_cases({"a": (gt, cfg, 16)}, [0, 1], record_every=10, progress=False)
    state, rec = runs["a"]
    assert rec.firing().shape == (30, 2, 16)
    assert rec.pattern_steps == [0, 10, 20, 29]
    assert torch.equal(rec.pattern_sizes[-1], T.feature_pattern(state.params, gt, cfg).sum(-1))
    # the last-fired counters of the engine agree with the recorded firing
    last = torch.where(rec.firing().any(0), 29 - rec.firing().flip(0).float().argmax(0), torch.zeros(2, 16).long())
    assert torch.equal(last, state.last_fired)


def test_dead_by_window_counts_latents_silent_in_the_last_w_steps():
    f = torch.zeros(10, 1, 4, dtype=torch.bool)
    f[0, 0, 0] = True        # fired only at the start
    f[8, 0, 1] = True        # fired recently
    f[:, 0, 2] = True        # always
    out = ex.dead_by_window(f, [1, 5, 10])
    assert out[:, 0].tolist() == [0.75, 0.5, 0.25]


def test_tracked_and_history_frames_are_long_tables():
    gt = _gt()
    s = T.train(gt, T.Config(method="topk", k=2, steps=20, batch_size=32, log_every=5, track_every=10), 16, [3, 4],
                progress=False)
    tr, hi = ex.tracked_frame(s, run="x"), ex.history_frame(s, run="x")
    assert len(tr) == 3 * 2 and {"M_GT_dec", "polysemantic", "run"} <= set(tr.columns)
    assert len(hi) == len(s.history) * 2 and hi["loss"].notna().all()


def test_ground_truth_dictionary_reconstructs_single_features_exactly():
    gt = _gt()
    cfg = T.Config(method="topk", k=1)
    P = ex.ground_truth_params(gt, 16, cfg)
    x_p = gt.W_p.T[None]                                         # each feature alone, unit coefficient
    _, a = T.encode(P, x_p, cfg)
    assert torch.allclose(T.decode(P, a)[0], gt.W_p.T, atol=1e-5)
    with pytest.raises(ValueError, match="n_q=4"):
        ex.ground_truth_params(gt, 4, cfg)


def test_absorption_table_has_one_row_per_model_and_pair_and_marks_the_min_child():
    tc = ab.TreeCoefficients(2, 3, n_free=2, p_parent=0.2, rho=1.0)
    gt = ab.tree_ground_truth(12, tc, 0.2, seed=0)
    cfg = T.Config(method="topk", k=2, steps=40, batch_size=64)
    s = T.train(gt, cfg, 16, [0, 1], progress=False)
    t = ex.absorption_table(s.params, gt, cfg, n_eval=4000)
    assert len(t) == 2 * 2 * 3
    assert (t.groupby(["model", "parent"])["min_child"].sum() == 1).all()
    for _, g in t.groupby(["model", "parent"]):
        assert g.loc[g.min_child, "a_j"].item() == g["a_j"].min()
    assert t["full"].between(0, 1).all()
