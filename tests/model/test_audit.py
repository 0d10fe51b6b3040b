import pytest
import torch

from sdl_paper import Config, Dictionary, audit, train
from sdl_paper.data import ground_truth
from sdl_paper.theory import metrics


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


def test_audit_reports_recovery_census_codes_minimality_and_absorption():
    gt = _gt()
    d = Dictionary.from_state(train(gt, Config.theory(steps=100, batch_size=64, k=2, lr=1e-2), 16, [0], progress=False))
    r = audit(d, truth=gt, pairs=[(0, 1)])
    W_E, W_D = d.params["W_E"][0], d.params["W_D"][0]
    assert r["M_IP_enc"] == metrics.max_inner_product(gt.W_p, encoder=W_E)
    assert r["MCC_dec"] == metrics.hungarian_mcc(W_D, gt.W_r)
    assert r["pattern_dead"] + r["monosemantic"] + r["polysemantic"] == 16
    assert 0 < r["L0"] <= 2 and r["explained_variance"] < 1
    pm = r["partial_minimum"]
    assert pm["is_partial_minimum"] is False and pm["grad_E"] > 1e-6     # 100 Adam steps are not a minimum
    assert r["absorption"][0]["parent"] == 0 and 0 <= r["absorption"][0]["silent"] <= 1


def test_audit_certifies_the_ground_truth_dictionary_as_a_partial_minimum():
    gt = ground_truth.GroundTruth(torch.eye(4), torch.eye(4), ground_truth.Coefficients(4, 0.99))
    inside = torch.eye(4) - 0.1 * (1 - torch.eye(4))      # other features strictly negative: inside the region
    r = audit(Dictionary({"W_E": inside[None], "W_D": torch.eye(4)[None]}, Config.theory(method="relu", l1=0.0)),
              truth=gt)
    assert r["partial_minimum"]["is_partial_minimum"] is True and r["M_GT_dec"] == 1.0
    on_edge = audit(Dictionary({"W_E": torch.eye(4)[None], "W_D": torch.eye(4)[None]}, Config.theory(method="relu")),
                    truth=gt)                               # zeros on the region's boundary: undecidable here
    assert on_edge["partial_minimum"]["is_partial_minimum"] is None
    moved = audit(Dictionary({"W_E": inside[None], "W_D": 0.9 * torch.eye(4)[None]}, Config.theory(method="relu")),
                  truth=gt)
    assert moved["partial_minimum"]["is_partial_minimum"] is False


def test_audit_says_what_it_needs_instead_of_guessing():
    d = Dictionary({"W_E": torch.randn(1, 16, 8), "W_D": torch.randn(1, 8, 16)}, Config.theory(k=2))
    r = audit(d)
    assert r["recovery"].startswith("needs truth") and r["codes"].startswith("needs data")
    assert r["partial_minimum"].startswith("needs a GroundTruth")
    assert audit(d, truth=torch.eye(8), pairs=[(0, 1)])["absorption"].startswith("needs a GroundTruth")


def test_a_transcoder_is_audited_against_its_targets_and_refused_without_them(tmp_path):
    import warnings

    import sdl_paper as sdl

    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(2000, 8, generator=g), torch.randn(8, 8, generator=g)
    y = torch.relu(x @ W)                                  # an MLP's output: the transcoder's target
    d = sdl.Dictionary.from_state(sdl.train(sdl.as_source(x, y), sdl.Config.theory(k=4, steps=200, batch_size=64,
                                                                            lr=3e-3), 32, [0], progress=False))
    with pytest.raises(ValueError, match="pass targets="):
        sdl.audit(d, data=x)
    r = sdl.audit(d, data=x, targets=y)
    assert r["explained_variance_of"] == "the targets" and r["explained_variance"] > 0.3
    against_input = 1 - ((x - d.decode(d.encode(x))) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert r["explained_variance"] > against_input + 0.3     # the input is the wrong reference
    with pytest.raises(ValueError, match="mislabel"):
        sdl.export_saelens(d, tmp_path / "sae")
    density = r["log10_feature_density"]
    assert sum(density["counts"]) + density["never_fired"] == 32 and len(density["edges"]) == 21
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sdl.audit(d, data=x, targets=y, k=0)["model"] == 0
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_per_edge_absorption_finds_the_planted_absorbed_edge_and_the_latent_that_took_it():
    from sdl_paper.data.ground_truth import GroundTruth
    from sdl_paper.model.config import Config as C
    from sdl_paper.theory.absorption import Tree

    tree = Tree(n_parents=2, n_children=2, p_parent=0.2, rho=0.8, child_decay=1.0)
    W = torch.eye(tree.n)                                   # orthonormal directions: n_p = n = 6
    gt = GroundTruth(W, W, tree)
    p, c = tree.edges()[0]                                  # parent 0, its first child: absorbed below
    W_E, W_D = W.clone(), W.clone()                         # faithful latents, one per feature
    W_E[p] = W[:, p] - 100 * W[:, c]                        # the parent latent goes silent when the child is on
    W_D[:, c] = (W[:, p] + W[:, c]) / 2 ** 0.5              # the child's latent carries the parent
    d = Dictionary({"W_E": W_E[None], "W_D": W_D[None]}, C.theory(method="relu"), [0])
    report = audit(d, truth=gt, pairs="edges", n_samples=20000)
    summary = report["absorption_by_edge"]
    assert summary["edges"] == summary["scored"] == 4 and summary["not_learned"] == 0
    first = summary["worst"][0]
    assert (first["parent"], first["child"], first["taken_by"]) == (p, c, c) and first["full"] > 0.95
    assert all(row["full"] == 0.0 for row in summary["worst"][1:])   # the other edges are faithful
    assert summary["full"]["max"] == first["full"]
    with pytest.raises(ValueError, match="needs a SynthWorld or a GroundTruth whose coefficients have a hierarchy"):
        audit(d, truth=W, pairs="edges")


def test_edge_absorption_scores_every_model_from_the_audits_draw():
    from sdl_paper.data.ground_truth import GroundTruth
    from sdl_paper.model.audit import edge_absorption
    from sdl_paper.model.config import Config as C
    from sdl_paper.theory.absorption import Tree

    tree = Tree(n_parents=2, n_children=2, p_parent=0.2, rho=0.8, child_decay=1.0)
    W = torch.eye(tree.n)
    gt = GroundTruth(W, W, tree)
    p, c = tree.edges()[0]
    W_E, W_D = W.clone(), W.clone()
    W_E[p], W_D[:, c] = W[:, p] - 100 * W[:, c], (W[:, p] + W[:, c]) / 2 ** 0.5      # model 1: absorbed
    d = Dictionary({"W_E": torch.stack([W, W_E]), "W_D": torch.stack([W, W_D])}, C.theory(method="relu"), [0, 1])
    reports = edge_absorption(d, gt, n_samples=5000, seed=3)
    assert len(reports) == 2 and reports[0]["absorption_by_edge"]["full"]["max"] == 0.0
    for k, report in enumerate(reports):                 # the same draw as the audit of each model
        assert report["absorption"] == audit(d, truth=gt, model=k, pairs="edges", n_samples=5000,
                                             seed=3)["absorption"]
    assert edge_absorption(d, gt, models=[1], n_samples=5000, seed=3) == reports[1:]


def test_a_synthsaebench_world_is_a_truth_for_the_audit_with_its_forest_as_edges():
    from sdl_paper.data.synthsaebench import SynthConfig, SynthWorld
    from sdl_paper.model.config import Config as C

    world = SynthWorld(SynthConfig(n=12, n_p=12, roots=2, branching=2, depth=1, bias=0.0, orthogonalize_steps=0))
    world.W_p = torch.eye(12)                               # orthonormal directions: the answer is known
    p, c = world.edges()[0]
    W_E, W_D = torch.eye(12), torch.eye(12)
    faithful = audit(Dictionary({"W_E": W_E[None], "W_D": W_D[None]}, C.theory(method="relu"), [0]),
                     truth=world, pairs="edges", n_samples=20000)
    assert faithful["M_GT_dec"] == 1.0 and faithful["detection_F1"] == 1.0
    assert faithful["absorption_by_edge"]["edges"] == faithful["absorption_by_edge"]["scored"] == 4
    assert faithful["absorption_by_edge"]["full"]["max"] == 0.0
    W_E[p] = W_E[p] - 100 * W_E[c]                          # the parent latent goes silent when the child is on
    W_D[:, c] = (W_D[:, p] + W_D[:, c]) / 2 ** 0.5          # the child's latent carries the parent
    absorbed = audit(Dictionary({"W_E": W_E[None], "W_D": W_D[None]}, C.theory(method="relu"), [0]),
                     truth=world, pairs="edges", n_samples=20000)["absorption_by_edge"]
    first = absorbed["worst"][0]
    assert (first["parent"], first["child"], first["taken_by"]) == (p, c, c) and first["full"] > 0.95
    assert all(row["full"] == 0.0 for row in absorbed["worst"][1:])


def test_synthsaebench_detection_metrics_are_one_for_the_faithful_dictionary_and_lower_for_a_mixed_one():
    from sdl_paper.data.ground_truth import GroundTruth
    from sdl_paper.model.config import Config as C
    from sdl_paper.theory.absorption import Tree

    tree = Tree(n_parents=2, n_children=2, p_parent=0.2, rho=0.8)
    W = torch.eye(tree.n)
    gt = GroundTruth(W, W, tree)
    faithful = Dictionary({"W_E": W[None].clone(), "W_D": W[None].clone()}, C.theory(method="relu"), [0])
    r = audit(faithful, truth=gt, n_samples=4000)
    assert r["detection_F1"] == 1.0 and r["uniqueness"] == 1.0 and r["MCC_dec"] == pytest.approx(1.0)
    mixed = W.clone()
    mixed[:, 1] = W[:, 0]                                   # latent 1 reads feature 0: two latents, one feature
    d = Dictionary({"W_E": mixed.T[None].contiguous(), "W_D": mixed[None].clone()}, C.theory(method="relu"), [0])
    r = audit(d, truth=gt, n_samples=4000)
    assert r["uniqueness"] == pytest.approx(5 / 6) and r["detection_F1"] == pytest.approx(1.0)
