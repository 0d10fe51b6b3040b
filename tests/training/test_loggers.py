"""The optional loggers: skipped with a clear message when their package is missing, and logging the history's
numbers when it is there (a stand-in module records the calls)."""
import sys
import types

import pytest
import torch

from sdl_paper import Config, train
from sdl_paper.training.loggers import TensorBoardLogger, WandbLogger


def _x():
    return torch.randn(256, 8, generator=torch.Generator().manual_seed(0))


def test_a_missing_package_warns_once_and_training_goes_on(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)                 # import wandb -> ImportError
    with pytest.warns(RuntimeWarning, match="'wandb' is not installed.*pip install wandb"):
        logger = WandbLogger(project="p")
    cfg = Config.theory(k=2, steps=6, batch_size=16, log_every=2)
    state = train(_x(), cfg, 16, [0], progress=False, callback=logger)
    assert state.step == 6


def test_wandb_receives_every_logged_step_per_model(monkeypatch):
    calls = []
    finished = []
    fake = types.SimpleNamespace(
        init=lambda **kw: calls.append(("init", kw)) or types.SimpleNamespace(finish=lambda: finished.append(1)),
        log=lambda scalars, step: calls.append(("log", step, scalars)))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    state = train(_x(), Config.theory(k=2, steps=6, batch_size=16, log_every=2, lr=(1e-3, 2e-3)), 16, [0, 1],
                  progress=False, callback=WandbLogger(project="p"))
    logs = [c for c in calls if c[0] == "log"]
    assert calls[0][0] == "init" and calls[0][1]["project"] == "p" and calls[0][1]["config"]["k"] == 2
    assert [step for _, step, _ in logs] == [h["step"] for h in state.history] and finished == [1]
    first = logs[0][2]
    assert first["loss/model_1"] == pytest.approx(state.history[0]["loss"][1]) and first["lr/model_1"] == 2e-3


def test_tensorboard_writes_through_summary_writer(monkeypatch, tmp_path):
    written = []

    class Writer:
        def __init__(self, log_dir):
            written.append(("dir", log_dir))

        def add_scalar(self, name, value, step):
            written.append((name, step))

        def close(self):
            written.append(("closed",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    train(_x(), Config.theory(k=2, steps=4, batch_size=16, log_every=2), 16, [0], progress=False,
          callback=TensorBoardLogger(str(tmp_path / "runs")))
    assert written[0] == ("dir", str(tmp_path / "runs")) and written[-1] == ("closed",)
    assert ("EV/model_0", 0) in written and ("L0/model_0", 2) in written
