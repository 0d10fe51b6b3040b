import pytest
import torch

from sdl_paper.sources import ground_truth
from sdl_paper.theory import methods
from sdl_paper.engine.train import TrainingDiverged, evaluate, fit


def _gt():
    return methods.get("SAE").view(ground_truth.make_world(8, 12, 0.9, 0.4, seed=0))


def test_training_lowers_the_loss_below_the_empty_dictionary():
    gt = _gt()
    model = methods.get("SAE").model(gt, 16, activation="topk:2", seed=0)
    before = evaluate(model, gt)["L_SDL"]
    hist = fit(model, gt, steps=300, batch_size=64, lr=1e-2, progress=False)
    after = evaluate(model, gt)
    assert after["L_SDL"] < 0.5 * before and after["L_SDL"] < after["baseline"]
    assert hist.step[-1] == 299 and len(hist.loss) == len(hist.step)


def test_same_seed_gives_the_same_weights_on_cpu():
    gt = _gt()
    weights = []
    for _ in range(2):
        model = methods.get("SAE").model(gt, 16, seed=0)
        fit(model, gt, steps=20, batch_size=32, seed=3, progress=False)
        weights.append(model.W_E.detach().clone())
    assert torch.equal(*weights)


def test_divergence_stops_with_the_step_and_the_reason():
    gt = _gt()
    gt.W_p = gt.W_p.clone()
    gt.W_p[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="at step 0"):
        fit(methods.get("SAE").model(gt, 16), gt, steps=5, progress=False)


def test_bad_arguments_fail_before_training():
    gt = _gt()
    with pytest.raises(ValueError, match="lr > 0"):
        fit(methods.get("SAE").model(gt, 16), gt, steps=5, lr=0.0, progress=False)
