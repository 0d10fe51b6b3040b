import math

import pandas as pd
import pytest
import torch

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
    cfg = Config(method="topk", k=2, steps=1, batch_size=8)
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


def test_run_row_orders_models_values_outer_seeds_inner():
    wld = _world()
    f, state, cfg = lrb.run_row(wld, "ReLU SAE", "theory", 12, [0, 1], sweep=("l1", [0.0, 3.0]), steps=60,
                                batch_size=64)
    assert cfg.l1 == (0.0, 0.0, 3.0, 3.0)
    assert f["value"].tolist() == [0.0, 0.0, 3.0, 3.0] and f["seed"].tolist() == [0, 1, 0, 1]
    assert (f["row"] == "ReLU SAE").all() and (f["practice"] == "theory").all()
    # each frame row is the model trained alone with that seed and value
    alone, _, _ = lrb.run_row(wld, "ReLU SAE", "theory", 12, [1], l1=3.0, steps=60, batch_size=64)
    assert f.iloc[3]["L0"] == pytest.approx(alone.iloc[0]["L0"], abs=1e-5)
    assert f.iloc[3]["M_IP_dec"] == pytest.approx(alone.iloc[0]["M_IP_dec"], abs=1e-5)
    assert f.iloc[2:]["L0"].max() < f.iloc[:2]["L0"].min()     # the large coefficient is the sparse pair


def test_run_row_with_anchors_evaluates_the_other_features():
    f, _, cfg = lrb.run_row(_world(), "TopK SAE", "standard", 12, [0], anchors=3, k=2, steps=5, batch_size=32)
    assert cfg.anchors == 3 and f.iloc[0]["anchors"] == 3


def _frame():
    rows = []
    for practice, values in [("theory", [0.1, 1.0]), ("standard", [0.1, 1.0])]:
        for v in values:
            for seed, noise in [(0, -0.05), (1, 0.05)]:
                dec = (0.2 if v == 0.1 else 0.6) + (0.1 if practice == "standard" else 0) + noise
                rows.append({"row": "ReLU SAE", "practice": practice, "value": v, "seed": seed,
                             "M_GT_dec": dec, "M_GT_enc": 0.0, "M_IP_enc": 0.5, "MCC": 0.4, "L0": 3.0})
    rows.append({"row": "TopK SAE", "practice": "theory", "value": float("nan"), "seed": 0, "M_GT_dec": 0.9,
                 "M_GT_enc": 0.8, "M_IP_enc": 0.97, "MCC": 0.9, "L0": 2.0})
    return pd.DataFrame(rows)


def test_best_setting_takes_the_best_mean_per_row_and_practice_and_keeps_fixed_rows():
    cols = ("M_GT_dec", "M_GT_enc", "M_IP_enc", "MCC", "L0")
    best = lrb.best_setting(_frame()[["row", "practice", "value", "seed", *cols]].assign(
        M_IP_dec=0, EV=0, dead=0))
    assert best[["row", "practice"]].values.tolist() == [["ReLU SAE", "theory"], ["ReLU SAE", "standard"],
                                                         ["TopK SAE", "theory"]]
    assert best["value"].iloc[0] == best["value"].iloc[1] == 1.0 and math.isnan(best["value"].iloc[2])
    assert best["M_GT_dec"].tolist() == pytest.approx([0.6, 0.7, 0.9])
    assert best["M_GT_dec_se"].iloc[0] == pytest.approx(0.05)        # sem of (0.55, 0.65)
    assert math.isnan(best["M_GT_dec_se"].iloc[2])                    # one seed: undefined, not 0


def test_paper_vs_ours_puts_the_papers_number_beside_ours_and_names_the_setting():
    t = lrb.paper_vs_ours(_frame().assign(M_IP_dec=0, EV=0, dead=0)).set_index(["row", "practice"])
    relu = t.loc[("ReLU SAE", "standard")]
    assert relu["paper M_GT enc"] == "0.0%" and relu["paper M_IP enc"] == "0.205"
    assert relu["M_GT dec"] == "70.0% ± 5.0%" and relu["setting"] == "l1 = 1"
    topk = t.loc[("TopK SAE", "theory")]
    assert topk["paper M_GT enc"] == "84.9%" and topk["setting"] == ""
    assert topk["M_GT enc"] == "80.0% (1 seed)" and "±" not in topk["M_IP enc"]


def test_with_without_pairs_the_same_seeds_and_the_anchors_pull_only_the_anchored_arm():
    wld = _world()
    f, st = lrb.with_without(wld, "TopK SAE", "theory", 12, [0, 1], 3, 5.0, k=2, steps=80, batch_size=32,
                             lr=0.03)
    assert f["anchored"].tolist() == [False, False, True, True] and f["seed"].tolist() == [0, 1, 0, 1]
    A = lrb.anchors_for(wld.view([0], [0]), lrb.split_anchors(10, 3, 0)[0])
    W = st.params["W_D"][:, :, :3]
    cos = (W / W.norm(dim=1, keepdim=True) * A["A_r"]).sum(1).mean(1)       # (4,)
    assert (cos[2:] > cos[:2].max() + 0.2).all(), cos
    with pytest.raises(ValueError, match="coef"):
        lrb.with_without(wld, "TopK SAE", "theory", 12, [0], 3, 0.0)


def test_ablation_tags_each_setting_and_lists_the_worlds_the_bench_cannot_generate():
    frames, missing = lrb.ablation("M", [0.4, 0.01, 0.5], lambda m: lrb.world(8, 40, 0.8, m, seed=0),
                                   lambda w: pd.DataFrame({"n": [w.view([0], [0]).n]}))
    assert missing == [0.01]                         # 40 unit vectors in 8 dimensions: M = 0.01 is out of reach
    assert [(f["ablation"][0], f["setting"][0], f["n"][0]) for f in frames] == [("M", 0.4, 40), ("M", 0.5, 40)]


def test_summary_text_writes_mean_and_standard_error_per_group():
    f = pd.DataFrame({"row": ["a", "a", "b"], "seed": [0, 1, 0], "MCC": [0.2, 0.4, 0.5]})
    t = lrb.summary_text(f, ["row"], cols=("MCC",), fmt=".2f")
    assert t.loc["a", "MCC"] == f"0.30 ± {0.1:.2f}" and t.loc["b", "MCC"] == "0.50 (1 seed)"
