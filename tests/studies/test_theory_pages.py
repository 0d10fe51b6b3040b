"""The theory chapters' analyses (sdl_paper.studies.theory_pages) on tiny inputs, against hand-computed values
and properties that a wrong function would break."""

import pandas as pd
import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.studies import theory_pages as tp
from sdl_paper.theory import instantiations
from sdl_paper.theory.framework import SDL


@pytest.fixture(autouse=True, scope="module")
def _optimizer_imports():
    """torch.optim's first optimizer imports torch._dynamo (about a second): pay it once, before the tests."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _world(n_p=4, n=5, S=0.8, n_layers=2):
    """A small world without the interference descent: random unit columns."""
    g = torch.Generator().manual_seed(0)
    layers = [torch.randn(n_p, n, generator=g) for _ in range(n_layers)]
    return ground_truth.World([W / W.norm(dim=0) for W in layers], ground_truth.Coefficients(n, S))


def test_code_checks_by_hand():
    # 4 samples, 2 features: rows 0 and 1 carry one feature alone, row 2 two features, row 3 none
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 0.0]])
    M_d = torch.tensor([0.5, 0.25], dtype=torch.float64)
    r = tp.code_checks(x, M_d, S=0.5, c_min=0.0, beta=1.0)
    assert r["rate"] == pytest.approx(4 / 8)
    assert r["z_rate"] == pytest.approx(0.0)
    assert r["total"].tolist() == [4.0, 1.0, 0.0, 0.0]     # x_d^2 only where d is alone
    sem = torch.tensor([4.0, 1.0, 0.0, 0.0]).std().item() / 2
    assert r["z_md"] == pytest.approx(abs(1.25 - 0.75) / sem)
    # the wrong closed form (beta^2 in place of 2 beta^2) halves sum M_d here: 0.375
    assert r["z_wrong"] == pytest.approx(abs(1.25 - 0.375) / sem)
    assert r["mc"].tolist() == [1.0, 0.25] and r["z_feat"][1].item() == 0.0


def test_code_checks_pass_on_the_generator_and_catch_a_wrong_moment():
    coef = ground_truth.Coefficients(5, 0.8, c_min=0.0, beta=1.0)
    x = coef.sample(20000, torch.Generator().manual_seed(0))
    r = tp.code_checks(x, coef.M_d(), 0.8, 0.0, 1.0)
    assert r["z_rate"] < 5 and r["z_md"] < 5 and r["z_wrong"] > 5
    assert tp.code_checks(x, coef.M_d() * 1.5, 0.8, 0.0, 1.0)["z_md"] > 5


def test_activation_checks_tell_the_homogeneity_kinds_apart():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 8, generator=g)
    t_b = torch.rand(64, 1, generator=g) * 4 + 0.25
    t = tp.activation_checks(["relu", "jumprelu:0.5", "batchtopk:2", "relu"], z, t_b)
    assert list(t.index) == ["relu", "jumprelu:0.5", "batchtopk:2"]      # duplicates dropped, order kept
    assert t["keeps or zeroes"].all()
    assert t.loc["relu", "per-sample t"] and t.loc["relu", "common t"]
    assert not t.loc["jumprelu:0.5", "common t"]
    assert t.loc["batchtopk:2", "common t"] and not t.loc["batchtopk:2", "per-sample t"]
    assert t.loc["batchtopk:2", "fraction kept"] == pytest.approx(2 / 8)
    assert t.loc["relu", "fraction kept"] == pytest.approx((z > 0).float().mean().item())


def test_train_instantiations_covers_every_method_with_its_shapes():
    world = _world()
    summary, curves = tp.train_instantiations(world, "relu", 6, steps=10, batch_size=16, lr=0.02, seed=0)
    assert list(summary.index) == list(instantiations.INSTANTIATIONS)
    for name, inst in instantiations.INSTANTIATIONS.items():
        view = inst.view(world)
        assert (summary.loc[name, "n_p"], summary.loc[name, "n_r"]) == (view.n_p, view.n_r)
    assert (summary["L_SDL after"] < summary["L_SDL before"]).all()
    assert summary[["M_GT_enc", "M_IP_dec"]].stack().between(0, 1).all()
    assert list(curves.columns) == ["method", "step", "batch loss"]
    assert curves.groupby("method", sort=False).size().to_dict() == {m: 2 for m in instantiations.INSTANTIATIONS}


def test_random_and_trained_and_the_gap_sweep():
    gt = _world(S=0.9, n_layers=1).view([0], [0])
    models = tp.random_and_trained(gt, ["relu", "relu"], 6, steps=5, seed=0)
    assert list(models) == ["random, relu", "trained, relu"]
    assert torch.equal(models["random, relu"].W_E, SDL(4, 6, activation="relu", seed=0).W_E)
    gaps = [0.01, 0.1]
    sweep = tp.gap_sweep(models, gt, gaps, n_samples=200, seed=0)
    assert list(sweep["model"]) == ["random, relu"] * 2 + ["trained, relu"] * 2
    assert list(sweep["1-S"]) == gaps * 2
    assert sweep["L_SDL"].to_numpy() == pytest.approx((sweep["single"] + sweep["gap"]).to_numpy())
    assert sweep["relative gap"].to_numpy() == pytest.approx((sweep["gap"] / sweep["L_SDL"]).to_numpy())
    # the two-feature term grows with 1 - S
    assert (sweep.groupby("model")["gap"].apply(lambda g: g.is_monotonic_increasing)).all()


def test_literal_topk_segment_jumps_inside_one_region():
    from sdl_paper.theory import regions as rg

    seg = tp.literal_topk_segment()
    ex = rg.literal_topk_example()
    assert seg["M_1"] == pytest.approx(ex["gt"].M_d().item())
    assert len(seg["P_pos"]) == 1 and seg["ends_differ"]
    assert seg["L_lit"].shape == seg["L_ours"].shape == (100,)
    assert seg["L_lit"][0].item() == pytest.approx(rg.tilde_loss(ex["A"], ex["W_D"], ex["gt"], ex["sigma"]).item())
    assert seg["jump"] == pytest.approx(seg["L_lit"].diff().abs().max().item()) and seg["jump"] > 1.0
    assert seg["sd_lit"] < -1.0 and rg.second_differences(seg["L_ours"]).min() > -1e-12


def test_sae_view_has_unit_float64_columns_and_bounded_interference():
    gt = tp.sae_view(4, 5, 0.9, seed=0)
    assert gt.W_p.dtype == torch.float64 and gt.W_p.shape == (4, 5) and gt.W_r is gt.W_p
    assert torch.allclose(gt.W_p.norm(dim=0), torch.ones(5, dtype=torch.float64), atol=1e-15)
    assert ground_truth.max_interference(gt.W_p) <= 0.9 + 1e-6
    assert float(gt.coefficients.S) == 0.99


def test_descent_runs_lower_the_loss_from_seeded_starts():
    from sdl_paper.theory import regions as rg
    from sdl_paper.theory.activations import make_activation

    relu = make_activation("relu")
    eye = torch.eye(3, dtype=torch.float64)
    gt = ground_truth.GroundTruth(eye, eye, ground_truth.Coefficients(3, 0.99))
    runs = tp.descent_runs(gt, 6, [3, 4, 3], relu, steps=100)
    assert list(runs["seed"]) == [3, 4, 3]
    assert runs.iloc[0].equals(runs.iloc[2].rename(0))              # the same seed, the same run
    gen = torch.Generator().manual_seed(4)
    E0 = 0.25 * torch.randn(6, 3, generator=gen, dtype=torch.float64)
    D0 = 0.25 * torch.randn(3, 6, generator=gen, dtype=torch.float64)
    assert runs.loc[1, "L~ start"] == pytest.approx(rg.tilde_loss(E0, D0, gt, relu).item())
    assert (runs["L~ end"] < runs["L~ start"]).all()
    counts = runs[list(rg.pattern_counts(rg.pattern(E0, relu, eye)))].sum(axis=1)
    assert (counts == 6).all()                                       # every latent counted once
    assert runs[["M_GT encoder", "M_GT decoder", "M_IP encoder"]].stack().between(0, 1).all()


def test_partition_checks_follow_the_settings_and_the_generator():
    from sdl_paper.theory.activations import make_activation

    relu = make_activation("relu")
    g = torch.Generator().manual_seed(0)
    Wp = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0][:, :5]   # orthonormal columns
    settings = {"unequal": (Wp, torch.linspace(0.98, 0.995, 5), 2), "control": (Wp, 0.99, 1)}
    checks = tp.partition_checks(Wp, settings, 4, 1, relu, torch.Generator().manual_seed(1))
    assert list(checks["weights"]) == ["unequal", "unequal", "control"]
    again = tp.partition_checks(Wp, settings, 4, 1, relu, torch.Generator().manual_seed(1))
    pd.testing.assert_frame_equal(checks, again)
    assert checks["realizable"].all()
    # orthonormal features and equal weights: the paper's construction is a partial minimum
    assert checks.loc[2, "paper |grad W_E|"] < 1e-9


def test_descent_endpoints_label_every_run_by_its_certificate():
    from sdl_paper.theory.activations import make_activation

    eye = torch.eye(3, dtype=torch.float64)
    gt = ground_truth.GroundTruth(eye, eye, ground_truth.Coefficients(3, 0.99))
    runs = tp.descent_endpoints(gt, make_activation("relu>topk:1"), [1.0, 2.0], [0.1, 1.0], 2, seed=0,
                                steps=30, polish_iters=3)
    assert list(runs["n_q / n"]) == [1.0] * 4 + [2.0] * 4
    assert list(runs["init scale"]) == [0.1, 0.1, 1.0, 1.0] * 2
    zero = runs["L~ (polished)"] < 1e-10
    spurious = ~zero & runs["certified"] & (runs["polysemantic"] > 0)
    assert (runs["outcome"] == "zero loss").equals(zero)
    assert (runs["outcome"] == "spurious partial minimum").equals(spurious)
    assert (runs["outcome"] == "not certified").equals(~zero & ~spurious)
    assert (runs[["pattern_dead", "monosemantic", "polysemantic"]].sum(axis=1)
            == [3] * 4 + [6] * 4).all()                                  # n_q latents per run


def test_hierarchy_orders_parents_then_children_under_the_interference_bound():
    h = tp.hierarchy(16, 2, 3, 0.5, seed=0)
    assert h.W.shape == (16, 8) and h.W.dtype == torch.float64
    assert h.parents == [0, 1] and h.children == [[2, 3, 4], [5, 6, 7]]
    assert ground_truth.max_interference(h.W) <= 0.5 + 1e-6
    assert h.owner().tolist() == [0, 0, 0, 1, 1, 1]


def test_firing_sets_by_hand():
    V = torch.eye(3, dtype=torch.float64)
    W_E = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.2, 0.9]], dtype=torch.float64)
    assert tp.firing_sets(W_E, V, 0.3) == [[0, 1], [2]]
    assert tp.firing_sets(W_E, V, 0.0) == [[0, 1], [1, 2]]
    assert tp.firing_sets(W_E, V, 1.0) == [[], []]


def test_split_table_splits_off_the_weakest_child_of_each_parent():
    from sdl_paper.theory import absorption as ab

    h = tp.hierarchy(16, 2, 3, 0.2, seed=0)
    V, owner, W_E = h.atoms(), h.owner(), ab.faithful_encoder(h)
    c = 0.45
    assert tp.firing_sets(W_E, V, c) == [[0, 1, 2], [3, 4, 5]]          # the faithful pattern
    table, splits = tp.split_table(W_E, V, owner, c)
    assert list(table["parent"]) == [0, 1] and set(splits) == {0, 1}
    for i, row in table.iterrows():
        acts = (W_E[i] @ V[:, owner == i]).numpy()
        assert row["j*"] == splits[i].child == 3 * i + int(acts.argmin())
        assert row["activations a_j"] == acts.round(3).tolist()
        assert row["gap to the next child"] == pytest.approx(sorted(acts)[1] - acts.min())
        assert row["new threshold c'"] > c and row["split realized"]
