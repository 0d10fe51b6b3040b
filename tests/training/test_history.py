"""A run's history: every loss term, normalised MSE, explained variance, L0, dead fraction and learning rate per
logged step and model, as a table and a one-call figure; the progress bar shows the same numbers."""
import io

import matplotlib
import pytest
import torch

from sdl_paper import Config, train
from sdl_paper.model.dictionary import decode, encode
from sdl_paper.training import history

matplotlib.use("Agg")


def _run(**kw):
    x = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))
    cfg = Config.theory(**({"k": 2, "steps": 20, "batch_size": 64, "log_every": 5, "lr": (1e-2, 3e-3)} | kw))
    return x, train(x, cfg, 16, [0, 1], progress=False)


def test_every_logged_step_holds_every_term_per_model():
    _, state = _run(remedy="auxk", aux_k=4)
    assert [h["step"] for h in state.history] == [0, 5, 10, 15, 19]
    for h in state.history:
        assert set(history.METRICS) <= set(h) and all(len(h[k]) == 2 for k in history.METRICS)
        assert h["lr"] == [1e-2, 3e-3]
        for m in range(2):
            assert h["total"][m] == pytest.approx(h["loss"][m] + h["penalty"][m] + h["aux"][m], rel=1e-5)
            assert 0 <= h["window_dead"][m] <= 1 and h["L0"][m] <= 2


def test_explained_variance_and_nmse_are_those_of_the_batch():
    # one full batch of fixed data: the logged numbers must equal the ones computed by hand at the end
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    cfg = Config.theory(k=2, steps=1, batch_size=64, log_every=1, lr=1e-12)
    state = train(iter([x]), cfg, 16, [0], progress=False)    # an iterator source: exactly this batch
    h = state.history[-1]
    _, a = encode(state.params, x[None], cfg)
    rec = (x[None] - decode(state.params, a, cfg)).pow(2).sum(-1).mean().item()
    var = (x - x.mean(0)).pow(2).sum(-1).mean().item()
    assert h["EV"][0] == pytest.approx(1 - rec / var, rel=1e-4)
    assert h["nmse"][0] == pytest.approx(rec / x.pow(2).sum(-1).mean().item(), rel=1e-4)


def test_frame_and_plot_in_one_call():
    _, state = _run()
    table = history.frame(state)
    assert len(table) == 2 * len(state.history) and set(table["seed"]) == {0, 1}
    fig = history.plot(state)
    window = state.config["dead_window"]
    assert [ax.get_title() for ax in fig.axes] == [history.LABELS[m] for m in history.PLOTTED[:-1]] + [
        f"dead fraction (no firing in {window} steps)"]
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    shaded = fig.axes[-1].patches                    # the steps before one window has passed
    assert len(shaded) == 1 and shaded[0].get_x() == 0 and shaded[0].get_width() == min(
        window, state.history[-1]["step"])
    with pytest.raises(ValueError, match="not in this history"):
        history.plot(state, metrics=("nope",))


def test_the_progress_bar_shows_loss_ev_l0_and_dead(monkeypatch):
    from types import SimpleNamespace

    from sdl_paper.training.callbacks import ProgressBar

    monkeypatch.setattr("sys.stderr", io.StringIO())
    entry = {"loss": [1.0, 3.0], "EV": [0.5, 0.7], "L0": [2.0, 4.0], "window_dead": [0.0, 0.5]}
    run = SimpleNamespace(desc="t", cfg=Config.theory(steps=10, log_every=5),
                          state=SimpleNamespace(step=1, history=[entry]))
    bar = ProgressBar(show=True)
    bar.on_start(run)
    bar.after_step(run, {})
    assert bar.bar.postfix == "EV=0.600, L0=3.0, dead=0.25, loss=2"        # tqdm sorts the keys
    bar.on_end(run)
