import math

import pandas as pd
import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.model import Config
from sdl_paper.training import train
from sdl_paper.studies import lrb
from sdl_paper.theory import instantiations


def _world():
    return lrb.world(8, 10, 0.8, 0.4, seed=0)


def test_row_config_follows_the_practice_and_keeps_a_transcoder_input():
    assert lrb.row_config("ReLU SAE", "theory").method == "relu"
    assert lrb.row_config("ReLU SAE", "standard").method == "relu_dec"
    tc = lrb.row_config("TopK transcoder", "standard", k=3)
    assert (tc.practice, tc.subtract_b_D, tc.bias, tc.k) == ("standard", False, True, 3)
    assert lrb.row_config("TopK SAE", "standard").subtract_b_D
    with pytest.raises(ValueError, match="rows: ReLU SAE"):
        lrb.row_config("TopK autoencoder", "theory")
    with pytest.raises(ValueError, match="allowed: theory, standard"):
        lrb.row_config("TopK SAE", "usual")


def test_split_anchors_is_a_seeded_partition():
    a, e = lrb.split_anchors(20, 6, seed=3)
    assert len(a) == 6 and len(e) == 14
    assert sorted(torch.cat([a, e]).tolist()) == list(range(20))
    assert torch.equal(a, lrb.split_anchors(20, 6, seed=3)[0])
    assert not torch.equal(a, lrb.split_anchors(20, 6, seed=4)[0])
    assert len(lrb.split_anchors(20, 0, seed=3)[0]) == 0
    for m in (-1, 20):
        with pytest.raises(ValueError, match=r"in \[0, n=20\)"):
            lrb.split_anchors(20, m, seed=0)


def test_anchors_are_the_unit_directions_of_the_chosen_features():
    gt = instantiations.get("transcoder").view(_world())
    idx = torch.tensor([1, 4])
    A = lrb.anchors_for(gt, idx)
    assert A["A_p"].shape == (2, gt.W_p.shape[0]) and A["A_r"].shape == (gt.W_r.shape[0], 2)
    assert torch.allclose(A["A_p"].norm(dim=1), torch.ones(2))
    cos = torch.nn.functional.cosine_similarity(A["A_r"], gt.W_r[:, idx], dim=0)
    assert torch.allclose(cos, torch.ones(2))


def test_evaluate_scores_the_oracle_and_only_the_features_asked_for():
    gt = instantiations.get("SAE").view(_world())
    cfg = Config.theory(method="topk", k=2, steps=1, batch_size=8)
    state = train(gt, cfg, gt.n, [0], progress=False)
    W = gt.W_p / gt.W_p.norm(dim=0)
    state.params["W_E"].data[0] = W.T
    state.params["W_D"].data[0] = W
    full = lrb.evaluate(state, gt, cfg)[0]
    assert full["M_GT_enc"] == full["M_GT_dec"] == 1.0 and full["MCC"] == pytest.approx(1.0)
    state.params["W_E"].data[0, :3] = W.T[3]          # encoder rows of features 0..2 now point at feature 3
    spoiled = lrb.evaluate(state, gt, cfg)[0]
    assert spoiled["M_GT_enc"] == pytest.approx(7 / 10) and spoiled["M_GT_dec"] == 1.0
    rest = lrb.evaluate(state, gt, cfg, features=torch.arange(3, 10))[0]
    assert rest["M_GT_enc"] == 1.0


def test_run_row_orders_models_values_outer_seeds_inner(float64):
    w = _world()
    wld = ground_truth.World([v.double() for v in w.layers], w.coefficients)
    f, state, cfg = lrb.run_row(wld, "ReLU SAE", "theory", 12, [0, 1], sweep=("l1", [0.0, 3.0]), steps=60,
                                batch_size=64)
    assert cfg.l1 == (0.0, 0.0, 3.0, 3.0)
    assert f["value"].tolist() == [0.0, 0.0, 3.0, 3.0] and f["seed"].tolist() == [0, 1, 0, 1]
    assert (f["row"] == "ReLU SAE").all() and (f["practice"] == "theory").all()
    # each frame row is the model trained alone with that seed and value
    alone, _, _ = lrb.run_row(wld, "ReLU SAE", "theory", 12, [1], l1=3.0, steps=60, batch_size=64)
    assert f.iloc[3]["L0"] == pytest.approx(alone.iloc[0]["L0"], abs=1e-12)       # float64: rounding only
    assert f.iloc[3]["M_IP_dec"] == pytest.approx(alone.iloc[0]["M_IP_dec"], abs=1e-12)
    assert (f.iloc[2:]["L0"].to_numpy() < f.iloc[:2]["L0"].to_numpy()).all()   # per seed, l1 = 3 is sparser


def test_run_row_with_anchors_evaluates_the_other_features():
    f, _, cfg = lrb.run_row(_world(), "TopK SAE", "standard", 12, [0], anchors=3, k=2, steps=5, batch_size=32)
    assert cfg.anchors == 3 and f.iloc[0]["anchors"] == 3


def test_random_span_anchors_lie_in_the_span_of_the_anchored_features_and_are_not_them():
    gt = instantiations.get("transcoder").view(_world())
    idx = torch.tensor([1, 4, 6])
    R, A = lrb.random_span_anchors(gt, idx, seed=0), lrb.anchors_for(gt, idx)
    assert R["A_p"].shape == A["A_p"].shape and R["A_r"].shape == A["A_r"].shape
    assert torch.allclose(R["A_p"].norm(dim=1), torch.ones(3)) and torch.allclose(R["A_r"].norm(dim=0), torch.ones(3))
    for W, X in ((gt.W_p[:, idx], R["A_p"].T), (gt.W_r[:, idx], R["A_r"])):
        coef = torch.linalg.lstsq(W, X).solution                  # in the span: the residual vanishes
        assert torch.allclose(W @ coef, X, atol=1e-5)
    assert (A["A_p"] @ R["A_p"].T).abs().max() < 0.999          # not the true directions themselves
    assert torch.equal(R["A_p"], lrb.random_span_anchors(gt, idx, seed=0)["A_p"])


def test_run_curves_orders_settings_arms_seeds_and_records_every_model():
    wld = _world()
    c, st = lrb.run_curves(wld, "TopK SAE", "theory", 12, [0, 1], sweep=("lr", [0.01, 0.03]), anchors=3,
                           anchor_coef=5.0, k=2, steps=60, batch_size=32, points=5)
    models = c[c["step"] == c["step"].max()]
    assert len(models) == 2 * 3 * 2 and st.params["W_E"].shape[0] == 12
    assert models["value"].tolist() == [0.01] * 6 + [0.03] * 6
    assert models["arm"].tolist()[:6] == ["none"] * 2 + ["anchored"] * 2 + ["random span"] * 2
    assert models["seed"].tolist() == [0, 1] * 6
    assert c["step"].min() == 0 and c["step"].max() == 59 and (c["anchors"] == 3).all()
    # each arm is pulled to its own anchors: the anchored arm to the features, the control to its directions
    gt = wld.view([0], [0])
    idx = lrb.split_anchors(10, 3, 0)[0]
    W = st.params["W_D"][:, :, :3]
    W = W / W.norm(dim=1, keepdim=True)
    true, ctrl = ((W * a["A_r"]).sum(1).mean(1) for a in (lrb.anchors_for(gt, idx), lrb.random_span_anchors(gt, idx, 0)))
    arm = models["arm"].to_numpy()
    assert true[arm == "anchored"].min() > true[arm == "none"].max() + 0.2, true
    assert ctrl[arm == "random span"].min() > ctrl[arm == "anchored"].max(), ctrl
    with pytest.raises(ValueError, match="arms"):
        lrb.run_curves(wld, "TopK SAE", "theory", 12, [0], anchors=3, arms=("placebo",), k=2, steps=5)
    with pytest.raises(ValueError, match="sweep over anchor_coef"):          # the arms would overwrite it
        lrb.run_curves(wld, "TopK SAE", "theory", 12, [0], sweep=("anchor_coef", [0.1, 1.0]), anchors=3, k=2,
                       steps=5)


def test_match_l0_picks_the_coefficient_nearest_the_target_and_refuses_fixed_rows():
    wld = _world()
    v, f = lrb.match_l0(wld, "ReLU SAE", "theory", 12, 2.0, [0.0, 1.0, 30.0], steps=80, batch_size=32,
                        lr=0.01)
    gap = (f.set_index("value")["L0"] / 2.0).map(math.log).abs()
    assert v == gap.idxmin() and f["L0"].iloc[0] > f["L0"].iloc[-1]       # the coefficient moves L0
    with pytest.raises(ValueError, match="no sparsity coefficient"):
        lrb.match_l0(wld, "TopK SAE", "theory", 12, 2.0, [1.0])
    with pytest.raises(ValueError, match="target"):
        lrb.match_l0(wld, "ReLU SAE", "theory", 12, 0.0, [1.0])


def test_curve_table_writes_mean_and_se_and_the_papers_entry():
    judged = pd.DataFrame({"row": ["TopK SAE", "ReLU SAE"], "value": [1e-3, 1e-3], "peak": [0.5, 0.0],
                           "peak_se": [0.1, float("nan")], "peak_step": [960.0, 0.0], "paired_at_peak": [1.0, 0.2],
                           "final": [0.0, 0.0], "final_se": [0.0, float("nan")], "paired_final": [1.0, 0.3],
                           "status": ["converged", "too few seeds"]})
    t = lrb.curve_table(judged, ["row", "value"])
    top = t.loc[("TopK SAE", 1e-3)]
    assert (top["peak enc"], top["at step"], top["final enc"], top["paper"]) == ("50.0% ± 10.0%", "960",
                                                                                 "0.0% ± 0.0%", "84.9%")
    assert t.loc[("ReLU SAE", 1e-3), "peak enc"] == "0.0% (1 seed)"
    assert lrb.curve_table(judged, ["row", "value"], paper_col=2).loc[("TopK SAE", 1e-3), "paper"] == "87.6%"


def test_ablation_tags_each_setting_and_lists_the_worlds_the_bench_cannot_generate():
    frames, missing = lrb.ablation("M", [0.4, 0.01, 0.5], lambda m: lrb.world(8, 40, 0.8, m, seed=0),
                                   lambda w: pd.DataFrame({"n": [w.view([0], [0]).n]}))
    assert missing == [0.01]                         # 40 unit vectors in 8 dimensions: M = 0.01 is out of reach
    assert [(f["ablation"][0], f["setting"][0], f["n"][0]) for f in frames] == [("M", 0.4, 40), ("M", 0.5, 40)]


def test_pm_table_gives_mean_and_standard_error_per_group_in_the_frames_order():
    f = pd.DataFrame({"row": ["b", "b", "a", "a", "c"], "F1": [0.2, 0.4, 0.5, 0.5, 0.9], "L0": [6, 8, 7, 7, 1]})
    t = lrb.pm_table(f, "row", ["F1", "L0"], ".2f")
    assert list(t.index) == ["b", "a", "c"] and list(t.columns) == ["F1", "L0"]
    assert t.loc["b", "F1"] == "0.30 ± 0.10" and t.loc["b", "L0"] == "7.00 ± 1.00"   # sem = sd / sqrt(2)
    assert t.loc["a", "F1"] == "0.50 ± 0.00" and t.loc["c", "F1"] == "0.90 (1 seed)"
