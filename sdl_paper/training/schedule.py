"""Schedules of a run, as functions of the 0-based step: the learning rate (warm-up, main phase, decay) and the
sparsity coefficient's warm-up, each named as in SAELens where it has the same meaning.

Learning rate (``cfg.lr`` = lr, T = ``cfg.steps``, W = ``lr_warm_up_steps``, D = ``lr_decay_steps``,
e = ``lr_end``, default lr / 10):

- warm-up, t < W: lr (t + 1) / W;
- main phase, W <= t < T - D: ``lr_scheduler_name`` ``constant``: lr; ``cosineannealing``:
  e + (lr - e) (1 + cos(pi s / S)) / 2 with s = t - W, S = T - W - D;
- decay, t >= T - D: linearly from the main phase's end value (lr for constant, e for cosine) to 0:
  v (1 - u / D), u = t - (T - D).

Sparsity coefficient (``l1_warm_up_steps`` = V): the method's L1 or L0 penalty times (t + 1) / V for t < V, then 1.
"""
from __future__ import annotations

import math

from ..model.config import Config


def _one(lr: float, cfg: Config, t: int) -> float:
    T, W, D = cfg.steps, cfg.lr_warm_up_steps, cfg.lr_decay_steps
    end = lr / 10 if cfg.lr_end is None else cfg.lr_end
    if t < W:
        return lr * (t + 1) / W
    main_end = lr if cfg.lr_scheduler_name == "constant" else end
    if D and t >= T - D:
        return main_end * (1 - (t - (T - D)) / D)
    if cfg.lr_scheduler_name == "constant":
        return lr
    S = max(T - W - D, 1)
    return end + (lr - end) * (1 + math.cos(math.pi * (t - W) / S)) / 2


def learning_rate(cfg: Config, step: int) -> float | tuple[float, ...]:
    """The learning rate of 0-based ``step`` (one per model when ``cfg.lr`` is a tuple); see the module."""
    if isinstance(cfg.lr, tuple):
        return tuple(_one(lr, cfg, step) for lr in cfg.lr)
    return _one(cfg.lr, cfg, step)


def sparsity_warm_up(cfg: Config, step: int) -> float:
    """The factor on the method's sparsity penalty at 0-based ``step``: (step + 1) / V during the warm-up."""
    V = cfg.l1_warm_up_steps
    return (step + 1) / V if step < V else 1.0
