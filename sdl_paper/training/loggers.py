"""Optional logging of the training curves to TensorBoard or Weights & Biases, as callbacks.

Neither package is a dependency: a logger whose package is missing warns once, naming the package and how to
install it, and then does nothing, so the run goes on. Each logs, at every step that
:class:`~sdl_paper.training.callbacks.BatchLog` recorded, the history entry's metrics per model, named
``METRIC/model_K`` (``loss``, ``EV``, ``L0``, ``window_dead``, ``lr``, ...).

    sdl.train(x, cfg, n_q, [0, 1], callback=TensorBoardLogger("runs/my-sae"))
    sdl.train(x, cfg, n_q, [0], callback=WandbLogger(project="my-saes"))
"""
from __future__ import annotations

import importlib
import warnings

from .callbacks import Callback
from .history import METRICS


def _scalars(entry: dict) -> dict[str, float]:
    return {f"{name}/model_{m}": float(v) for name in METRICS if name in entry for m, v in enumerate(entry[name])}


class _Logger(Callback):
    package = ""
    install = ""

    def __init__(self):
        try:
            self.module = importlib.import_module(self.package)
        except ImportError:
            self.module = None
            warnings.warn(f"{type(self).__name__}: {self.package!r} is not installed, so nothing is logged there "
                          f"(pip install {self.install}); training goes on", RuntimeWarning, stacklevel=3)
        self.logged = -1

    def after_step(self, run, terms: dict) -> None:
        history = run.state.history
        if self.module is None or not history or "loss" not in history[-1] or history[-1]["step"] == self.logged:
            return
        self.logged = history[-1]["step"]
        self.write(_scalars(history[-1]), self.logged)

    def write(self, scalars: dict[str, float], step: int) -> None: ...


class TensorBoardLogger(_Logger):
    """Scalars to a TensorBoard event folder ``log_dir`` (needs the ``tensorboard`` package)."""

    package, install = "torch.utils.tensorboard", "tensorboard"

    def __init__(self, log_dir: str):
        super().__init__()
        self.log_dir, self.writer = log_dir, None

    def on_start(self, run) -> None:
        if self.module is not None:
            self.writer = self.module.SummaryWriter(self.log_dir)

    def write(self, scalars, step):
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)

    def on_end(self, run) -> None:
        if self.writer is not None:
            self.writer.close()


class WandbLogger(_Logger):
    """Scalars to a Weights & Biases run (needs the ``wandb`` package); ``init`` keywords go to ``wandb.init``
    (project, name, ...); the run's Config is logged as its configuration."""

    package, install = "wandb", "wandb"

    def __init__(self, **init):
        super().__init__()
        self.init, self.run = init, None

    def on_start(self, run) -> None:
        if self.module is not None:
            self.run = self.module.init(config=run.cfg.to_dict(), **self.init)

    def write(self, scalars, step):
        self.module.log(scalars, step=step)

    def on_end(self, run) -> None:
        if self.run is not None:
            self.run.finish()
