"""What the training loop calls besides the step itself: one :class:`Callback` per concern.

The loop (:func:`sdl_paper.training.loop.fit`) calls, for every callback in order, ``on_start(run)`` once,
``before_step(run)`` before a batch is drawn, ``on_loss(run, total)`` with the per-model loss (K,) before the
backward pass, ``after_step(run, terms)`` after the update (``run.state.step`` already counts it) and
``on_end(run)``. Built in: :class:`Resampling`, :class:`DivergenceCheck`, :class:`FiringRecord` (the last step each
latent fired, which dead-latent masks read), :class:`BatchLog`, :class:`ProgressBar`, :class:`Tracking`
(ground-truth metrics at chosen steps) and :class:`Checkpointing`. A plain function ``f(state, terms)`` passed as
``train(..., callback=f)`` runs after every step.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..model.measures import track
from . import distributed as dist
from . import schedule
from .checkpoint import save_checkpoint
from .progress import bar
from .resampling import resample
from .state import dead_mask


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the model."""


class Callback:
    """A hook of the training loop; every method does nothing unless overridden. ``run`` is the
    :class:`~sdl_paper.training.loop.Run` (state, source, cfg, device, seeds, desc, anchors)."""

    def on_start(self, run) -> None: ...

    def before_step(self, run) -> None: ...

    def on_loss(self, run, total: Tensor) -> None: ...

    def after_step(self, run, terms: dict) -> None: ...

    def on_end(self, run) -> None: ...


def at(step: int, every: int, last: int) -> bool:
    """Whether the step just taken (0-based ``step``) is a logging step: every ``every`` steps and the last."""
    return bool(every) and (step % every == 0 or step + 1 == last)


class Resampling(Callback):
    """Neuron resampling (:func:`~sdl_paper.training.resampling.resample`) at ``cfg.resample_at`` and every
    ``cfg.resample_every`` steps, before that step's batch is drawn."""

    def before_step(self, run) -> None:
        step, cfg = run.state.step, run.cfg
        if step > 0 and (step in cfg.resample_at or (cfg.resample_every and step % cfg.resample_every == 0)):
            resample(run.state, run.source, cfg, run.device)


class DivergenceCheck(Callback):
    """Raise :class:`TrainingDiverged` at the first step whose loss is not finite, naming the model."""

    def on_loss(self, run, total: Tensor) -> None:
        # one sum and one read per step; the elementwise check only when the sum is not finite
        if math.isfinite(total.sum().item()) or torch.isfinite(total).all():
            return
        bad = int((~torch.isfinite(total)).nonzero()[0])
        raise TrainingDiverged(f"{run.desc}: loss of model {bad} (seed {run.seeds[bad]}) is {total[bad].item()} "
                               f"at step {run.state.step}; lower lr (now {run.cfg.lr}) or check the data")


class FiringRecord(Callback):
    """``state.last_fired`` (K, n_q): the last step at which each latent fired (AuxK's and resampling's dead
    latents, the logged window-dead fraction)."""

    def after_step(self, run, terms: dict) -> None:
        run.state.last_fired.masked_fill_(terms["fired"].cpu(), run.state.step - 1)


class BatchLog(Callback):
    """Every ``cfg.log_every`` steps and at the last, one ``state.history`` entry with per-model lists of the
    batch's ``loss`` (the reconstruction term rec), ``penalty``, ``aux``, ``total``, ``nmse`` = rec / mean ||x_r||^2,
    ``EV`` = 1 - rec / mean ||x_r - mean x_r||^2 (explained variance), ``L0``, ``window_dead`` (fraction of latents
    dead by ``dead_window``) and ``lr``; see :func:`sdl_paper.training.history.frame` and ``.plot``."""

    def after_step(self, run, terms: dict) -> None:
        state, cfg = run.state, run.cfg
        if at(state.step - 1, cfg.log_every, cfg.steps):
            rec, penalty, aux, energy, var = (terms[k].detach() for k in ("rec", "penalty", "aux", "energy", "var"))
            lr = schedule.learning_rate(cfg, state.step - 1)
            lr = list(lr) if isinstance(lr, tuple) else [lr] * len(rec)
            state.history.append({
                "step": state.step - 1, "loss": rec.tolist(), "penalty": penalty.tolist(), "aux": aux.tolist(),
                "total": (rec + penalty + aux).tolist(),            # of the terms averaged over processes
                "nmse": (rec / energy.clamp_min(1e-30)).tolist(), "EV": (1 - rec / var.clamp_min(1e-30)).tolist(),
                "L0": terms["L0"].tolist(), "window_dead": dead_mask(state, cfg.dead_window).float().mean(1).tolist(),
                "lr": lr})


@dataclass
class ProgressBar(Callback):
    """A progress bar over the steps (:func:`~sdl_paper.training.progress.bar`: shown where somebody watches) with
    the models' mean batch loss, explained variance, L0 and dead fraction at each logged step (after
    :class:`BatchLog`)."""

    show: bool | None = None

    def on_start(self, run) -> None:
        self.bar = bar(None, desc=run.desc, show=self.show, total=run.cfg.steps - run.state.step)

    def after_step(self, run, terms: dict) -> None:
        self.bar.update(1)
        if at(run.state.step - 1, run.cfg.log_every, run.cfg.steps) and run.state.history:
            last = run.state.history[-1]
            mean = lambda key: sum(last[key]) / len(last[key])                     # noqa: E731
            self.bar.set_postfix(loss=f"{mean('loss'):.4g}", EV=f"{mean('EV'):.3f}", L0=f"{mean('L0'):.1f}",
                                 dead=f"{mean('window_dead'):.2f}", refresh=False)

    def on_end(self, run) -> None:
        self.bar.close()


@dataclass
class Tracking(Callback):
    """Named metrics of every model at chosen steps into ``state.tracked`` (one ``{"step", "models"}`` entry per
    step, ``models`` a list of one dict per model): at the 0-based ``steps`` given (e.g. :func:`log_steps`), or
    else every ``every`` steps and at the last. ``measure(params, source, cfg)`` returns the per-model dicts
    (default :func:`~sdl_paper.model.measures.track`: M_GT and M_IP over encoder rows and decoder columns and the
    latent census, which needs a source with known directions). ``train`` adds one for ``cfg.track_every``."""

    every: int = 0
    steps: tuple[int, ...] = ()
    measure: Callable = track

    def after_step(self, run, terms: dict) -> None:
        state, step = run.state, run.state.step - 1
        if step in self.steps if self.steps else at(step, self.every, run.cfg.steps):
            with torch.no_grad():
                models = self.measure(state.params, run.source, run.cfg)
            state.tracked.append({"step": step, "models": models})


def log_steps(total: int, n: int = 20) -> tuple[int, ...]:
    """About ``n`` 0-based steps spaced evenly in log(step + 1) from the first to the last of ``total``."""
    import numpy as np
    return tuple(sorted({int(round(x)) - 1 for x in np.geomspace(1, total, n)}))


@dataclass
class Checkpointing(Callback):
    """Write the run to folder ``path`` every ``every`` steps (0: only at the end) and at the end (process 0)."""

    path: str
    every: int = 0

    def after_step(self, run, terms: dict) -> None:
        if self.every and run.state.step % self.every == 0 and dist.world()[0] == 0:
            save_checkpoint(run.state, self.path)

    def on_end(self, run) -> None:
        if dist.world()[0] == 0:
            save_checkpoint(run.state, self.path)


@dataclass
class AfterStep(Callback):
    """A plain function ``f(state, terms)`` called after every step."""

    f: object

    def after_step(self, run, terms: dict) -> None:
        self.f(run.state, terms)
