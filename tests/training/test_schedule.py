"""The learning-rate and sparsity-coefficient schedules against hand-computed values, and in a real run."""
import math

import pytest
import torch

from sdl_paper import Config, train
from sdl_paper.training import schedule


def test_constant_with_warm_up_and_decay_by_hand():
    cfg = Config.theory(lr=1.0, steps=10, lr_warm_up_steps=4, lr_decay_steps=2)
    got = [schedule.learning_rate(cfg, t) for t in range(10)]
    assert got == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5])


def test_cosine_annealing_to_lr_end_then_decay_by_hand():
    cfg = Config.theory(lr=1.0, steps=12, lr_scheduler_name="cosineannealing", lr_warm_up_steps=2, lr_decay_steps=2,
                 lr_end=0.2)
    got = [schedule.learning_rate(cfg, t) for t in range(12)]
    S = 12 - 2 - 2
    cosine = [0.2 + 0.8 * (1 + math.cos(math.pi * s / S)) / 2 for s in range(S)]
    assert got == pytest.approx([0.5, 1.0, *cosine, 0.2, 0.1])


def test_per_model_learning_rates_keep_their_ratio_and_default_lr_end_is_a_tenth():
    cfg = Config.theory(lr=(1e-3, 1e-2), steps=10, lr_scheduler_name="cosineannealing")
    first, last = schedule.learning_rate(cfg, 0), schedule.learning_rate(cfg, 9)
    assert first == pytest.approx((1e-3, 1e-2))
    assert last[1] / last[0] == pytest.approx(10) and last[0] > 1e-4   # falling towards lr / 10


def test_the_sparsity_warm_up_by_hand_and_refusals():
    cfg = Config.theory(method="relu", l1_warm_up_steps=4)
    assert [schedule.sparsity_warm_up(cfg, t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    for kw, match in [(dict(method="topk", l1_warm_up_steps=3), "has none"),
                      (dict(steps=5, lr_warm_up_steps=4, lr_decay_steps=2), "exceeds steps=5"),
                      (dict(lr_scheduler_name="linear"), "allowed: constant, cosineannealing"),
                      (dict(lr=(1e-3, 1e-2), lr_end=1e-4), "one value per model"),
                      (dict(lr_scheduler_name="cosineannealing", lr_decay_steps=5, lr_end=0.0), "0 to 0")]:
        with pytest.raises(ValueError, match=match):
            Config.theory(**kw)


def test_a_run_logs_the_scheduled_rate_and_the_warmed_up_penalty():
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    cfg = Config.theory(method="relu", l1=1e-2, steps=8, batch_size=32, log_every=1, lr=4e-3, lr_warm_up_steps=4,
                 l1_warm_up_steps=8)
    state = train(x, cfg, 16, [0], progress=False)
    assert [h["lr"][0] for h in state.history] == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3, 4e-3, 4e-3, 4e-3, 4e-3])
    # the penalty is l1 * (t + 1) / 8 * E|a|_1: its ratio to the unscaled penalty of the same batch is (t + 1) / 8
    full = Config(**(cfg.to_dict() | {"l1_warm_up_steps": 0, "lr_warm_up_steps": 0, "steps": 1}))
    same = train(x, full, 16, [0], progress=False).history[0]["penalty"][0]
    assert state.history[0]["penalty"][0] == pytest.approx(same / 8, rel=1e-5)
