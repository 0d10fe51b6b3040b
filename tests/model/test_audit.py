import pytest
import torch

from sdl_paper import Config, Dictionary, audit, train
from sdl_paper.data import ground_truth
from sdl_paper.theory import metrics


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


def test_audit_reports_recovery_census_codes_minimality_and_absorption():
    gt = _gt()
    d = Dictionary.from_state(train(gt, Config(steps=100, batch_size=64, k=2, lr=1e-2), 16, [0], progress=False))
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
    r = audit(Dictionary({"W_E": inside[None], "W_D": torch.eye(4)[None]}, Config(method="relu", l1=0.0)), truth=gt)
    assert r["partial_minimum"]["is_partial_minimum"] is True and r["M_GT_dec"] == 1.0
    on_edge = audit(Dictionary({"W_E": torch.eye(4)[None], "W_D": torch.eye(4)[None]}, Config(method="relu")),
                    truth=gt)                               # zeros on the region's boundary: undecidable here
    assert on_edge["partial_minimum"]["is_partial_minimum"] is None
    moved = audit(Dictionary({"W_E": inside[None], "W_D": 0.9 * torch.eye(4)[None]}, Config(method="relu")),
                  truth=gt)
    assert moved["partial_minimum"]["is_partial_minimum"] is False


def test_audit_says_what_it_needs_instead_of_guessing():
    d = Dictionary({"W_E": torch.randn(1, 16, 8), "W_D": torch.randn(1, 8, 16)}, Config(k=2))
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
    d = sdl.Dictionary.from_state(sdl.train(sdl.as_source(x, y), sdl.Config(k=4, steps=200, batch_size=64,
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
