import numpy as np
import pandas as pd
import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.theory import absorption as ab, instantiations
from sdl_paper.studies import experiments as ex
from sdl_paper.model import Config, decode, encode, feature_pattern
from sdl_paper.training import train


def _gt():
    return instantiations.get("SAE").view(ground_truth.make_world(8, 12, 0.9, 0.3, n_layers=1, seed=0))


def test_recorder_keeps_every_step_and_the_pattern_at_the_interval():
    gt = _gt()
    cfg = Config.theory(method="topk", k=2, steps=30, batch_size=32, log_every=10)
    runs = ex.run_cases({"a": (gt, cfg, 16)}, [0, 1], record_every=10, progress=False)
    state, rec = runs["a"]
    assert rec.firing().shape == (30, 2, 16)
    assert rec.pattern_steps == [0, 10, 20, 29]
    assert torch.equal(rec.pattern_sizes[-1], feature_pattern(state.params, gt, cfg).sum(-1))
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
    s = train(gt, Config.theory(method="topk", k=2, steps=20, batch_size=32, log_every=5, track_every=10), 16, [3, 4],
                progress=False)
    tr, hi = ex.tracked_frame(s, run="x"), ex.history_frame(s, run="x")
    assert len(tr) == 3 * 2 and {"M_GT_dec", "polysemantic", "run"} <= set(tr.columns)
    assert len(hi) == len(s.history) * 2 and hi["loss"].notna().all()


def test_ground_truth_dictionary_reconstructs_single_features_exactly():
    gt = _gt()
    cfg = Config.theory(method="topk", k=1)
    P = ex.ground_truth_params(gt, 16, cfg)
    x_p = gt.W_p.T[None]                                         # each feature alone, unit coefficient
    _, a = encode(P, x_p, cfg)
    assert torch.allclose(decode(P, a)[0], gt.W_p.T, atol=1e-5)
    with pytest.raises(ValueError, match="n_q=4"):
        ex.ground_truth_params(gt, 4, cfg)


def test_tree_control_keeps_the_marginals_and_drops_the_implication():
    g = torch.Generator().manual_seed(0)
    tree = ab.Tree(2, 2, n_free=1, p_parent=0.3, rho=0.8, child_decay=0.5)
    ctrl = ab.Tree(2, 2, n_free=1, p_parent=0.3, rho=0.8, child_decay=0.5, independent=True)
    x, y = tree.sample(40000, g) > 0, ctrl.sample(40000, g) > 0
    assert torch.allclose(x.float().mean(0), y.float().mean(0), atol=0.01)       # same marginal rates
    c = tree.child(0, 0)
    assert bool(x[x[:, c], 0].all())                                             # child implies parent
    assert abs(y[y[:, c], 0].float().mean().item() - 0.3) < 0.03                 # control: independent


def test_absorption_frame_scores_a_faithful_dictionary_zero_and_an_absorbed_one_high():
    from sdl_paper.studies import absorption_experiments as ae
    tc = ab.Tree(2, 2, n_free=2, p_parent=0.3, rho=1.0, c_min=1.0, beta=0.1)
    gt = ab.tree_ground_truth(16, tc, 0.0, seed=0)
    cfg = Config.theory(method="relu", l1=0.0)
    P = ex.ground_truth_params(gt, tc.n, cfg)
    assert ae.absorption_frame(P, gt, cfg, n_eval=200)["full"].max() == 0.0
    # absorb child 0 of parent 0: its latent reads the child and writes (w_P + w_c)/sqrt 2, the parent latent is
    # inhibited by the child
    c, W = tc.child(0, 0), gt.W_p
    v = (W[:, 0] + W[:, c]) / 2 ** 0.5
    P["W_E"][0, c], P["W_D"][0, :, c] = W[:, c], v
    P["W_E"][0, 0] = W[:, 0] - 2 * W[:, c]
    t = ae.absorption_frame(P, gt, cfg, n_eval=200)
    row = t[(t.parent == 0) & (t.child == 0)].iloc[0]
    assert row["full"] == 1.0 and row["absorbed"]
    # the same latent reading (w_P + w_c)/sqrt 2 also fires on the parent alone: the parent's latent, no absorption
    P["W_E"][0, c] = v
    assert not ae.absorption_frame(P, gt, cfg, n_eval=200)["absorbed"].any()
    P["W_E"][0, c] = W[:, c]
    assert t[(t.parent != 0) | (t.child != 0)]["full"].max() == 0.0
    assert row["a_rank"] == 0 and row["a_j"] < t[(t.parent == 0) & (t.child == 1)]["a_j"].item()


def test_eval_codes_use_one_batchtopk_threshold_from_the_reference_batch():
    from sdl_paper.studies import absorption_experiments as ae
    cfg = Config.theory(method="batchtopk", k=1)
    params = {"W_E": torch.eye(3)[None]}
    ref = torch.tensor([[[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0]]])               # threshold: 3rd largest = 1
    a = ae.eval_codes(params, torch.tensor([[[1.5, 0.5, 0.0], [0.2, 0.3, 2.0]]]), cfg, ref)
    assert (a[0] > 0).tolist() == [[True, False, False], [False, False, True]]


def test_snapshots_keep_the_parameters_after_the_requested_step():
    from sdl_paper.studies import absorption_experiments as ae
    gt = _gt()
    cfg = Config.theory(method="topk", k=2, steps=12, batch_size=32)
    out = ae.run({"a": (gt, cfg, 16)}, [0], snapshot_steps=(5,))
    state, snap = out["a"]
    assert list(snap.params) == [5] and not torch.equal(snap.params[5]["W_E"], state.params["W_E"])
    again = train(gt, Config.theory(method="topk", k=2, steps=5, batch_size=32), 16, [0], progress=False)
    assert torch.allclose(again.params["W_E"], snap.params[5]["W_E"])


@pytest.mark.parametrize("control", [False, True])
@pytest.mark.parametrize("shape", [(8, 1), (4, 4)])
@pytest.mark.parametrize("method,knob", [("relu", {}), ("topk", {"k": 1}), ("topk", {"k": 2})])
def test_the_faithful_dictionary_scores_no_absorption_on_the_chapters_worlds(shape, control, method, knob):
    # the experiment chapter's default worlds (n_p 32, M 0.1, 8 free features, its marginals) at its largest
    # co-occurrence: the ground-truth dictionary has every child learned and none absorbed
    from sdl_paper.data.ground_truth import feature_matrix
    from sdl_paper.studies import absorption_experiments as ae
    P, C = shape
    dirs = feature_matrix(32, P * (1 + C) + 8, 0.1, seed=0)
    gt = ae.tree_world(dirs, P, C, 8, 0.1, 0.8, 0.7, 1.0, 0.1, control=control)
    cfg = Config.theory(method=method, bias=True, **knob)
    t = ae.absorption_frame(ex.ground_truth_params(gt, 2 * gt.n, cfg), gt, cfg, n_eval=300)
    assert len(t) == P * C and t["full"].max() == 0.0 and t["not_learned"].max() == 0.0


def _j_star_frame(n_abs_per_parent, hits, C=4):
    """A made-up frame: one run, parents with ranks 0..C-1 and n_abs absorbed children, rank 0 absorbed or not."""
    rows = []
    for p, (n_abs, hit) in enumerate(zip(n_abs_per_parent, hits)):
        absorbed = ([True] + [True] * (n_abs - 1) + [False] * (C - n_abs)) if hit else \
            ([False] + [True] * n_abs + [False] * (C - 1 - n_abs))
        rows += [{"seed": 0, "parent": p, "child": j, "a_rank": j, "absorbed": absorbed[j]} for j in range(C)]
    return pd.DataFrame(rows)


def test_j_star_groups_leave_out_parents_whose_children_are_all_or_none_absorbed():
    from sdl_paper.studies import absorption_experiments as ae
    # the bias of a pooled share: a parent with all four children absorbed always "has" its j* absorbed
    frame = _j_star_frame([4, 0, 1, 2], [True, False, True, False])
    g = ae.j_star_groups(frame)
    assert g["parent"].tolist() == [2, 3] and g["hit"].tolist() == [True, False]
    assert g["n_absorbed"].tolist() == [1, 2] and g["j_star"].tolist() == [0, 0]


def test_j_star_test_null_is_the_permutation_distribution_and_the_planted_power_is_met():
    from sdl_paper.studies import absorption_experiments as ae
    rng = np.random.default_rng(0)
    n_abs = rng.integers(1, 4, size=30)                          # 30 informative parents of 4 children
    groups = ae.j_star_groups(_j_star_frame(n_abs, [True] * 30))
    exact = ae.j_star_test(groups.assign(hit=False), lift=0.5)
    # Monte Carlo over permutations of the absorbed labels within each parent: the same law of T
    sims = np.array([sum(rng.permutation(4)[0] < a for a in n_abs) for _ in range(4000)])
    assert abs(sims.mean() - exact["expected"]) < 4 * sims.std() / np.sqrt(len(sims))
    t = int(np.quantile(sims, 0.9))
    p_exact = ae.j_star_test(groups.assign(hit=[i < t for i in range(30)]))["p_more"]
    assert abs((sims >= t).mean() - p_exact) < 4 * np.sqrt(p_exact * (1 - p_exact) / len(sims))
    # null data are rejected at about alpha or less; planted data (lift 0.5) at about the stated power
    def reject(lift):
        hit = [rng.random() < lift or rng.permutation(4)[0] < a for a in n_abs]
        return ae.j_star_test(groups.assign(hit=hit))["p_more"] < 0.05
    null_rate = np.mean([reject(0.0) for _ in range(400)])
    planted_rate = np.mean([reject(0.5) for _ in range(400)])
    assert null_rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)
    assert abs(planted_rate - exact["power"]) < 4 * np.sqrt(exact["power"] * (1 - exact["power"]) / 400)
    assert exact["power"] > 0.5 > null_rate


def test_a_j_before_absorption_is_read_at_one_snapshot_per_parent():
    from sdl_paper.data.ground_truth import feature_matrix
    from sdl_paper.studies import absorption_experiments as ae
    gt = ae.tree_world(feature_matrix(16, 2 * 4 + 2, 0.1, seed=0), 2, 3, 2, 0.3, 0.8, 0.7, 1.0, 0.1)
    cfg = Config.theory(method="relu", l1=1.0, bias=True, steps=40, batch_size=64, lr=3e-3)
    cases = {(("name", "a"),): (gt, cfg, 20)}
    t = ae.case_frame(ae.run(cases, [0, 1], snapshot_steps=(5, 20)), cases, [0, 1], n_eval=100, onset=0.1)
    assert len(t) == 2 * 2 * 3 and set(t["seed"]) == {0, 1} and (t["name"] == "a").all()
    for _, g in t.dropna(subset=["a_rank_before"]).groupby(["model", "parent"]):
        assert len(g) == 3 and g["step_before"].nunique() == 1       # all children of a parent: one snapshot
        assert sorted(g["a_rank_before"]) == [0, 1, 2]                # so their ranks are a permutation
