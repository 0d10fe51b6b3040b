"""The loop's callbacks (sdl_paper.training.callbacks): hooks called in order and as often as documented; the
built-ins record at the documented steps."""
import pytest
import torch

from sdl_paper import Callback, Config, TrainingDiverged, train
from sdl_paper.data import ground_truth
from sdl_paper.training.callbacks import Tracking, at, log_steps


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


class Log(Callback):
    def __init__(self):
        self.calls = []

    def on_start(self, run):
        self.calls.append(("start", run.state.step))

    def before_step(self, run):
        self.calls.append(("before", run.state.step))

    def on_loss(self, run, total):
        self.calls.append(("loss", tuple(total.shape)))

    def after_step(self, run, terms):
        self.calls.append(("after", run.state.step))

    def on_end(self, run):
        self.calls.append(("end", run.state.step))


def test_hooks_run_in_order_once_per_step():
    log = Log()
    train(_gt(), Config.theory(steps=3, batch_size=16), 16, [0, 1], progress=False, callback=log)
    step = [("before", 0), ("loss", (2,)), ("after", 1)]
    assert log.calls == [("start", 0), *step, ("before", 1), ("loss", (2,)), ("after", 2), ("before", 2),
                         ("loss", (2,)), ("after", 3), ("end", 3)]


def test_logging_and_tracking_steps_are_every_n_and_the_last():
    assert [s for s in range(10) if at(s, 4, 10)] == [0, 4, 8, 9]
    assert not any(at(s, 0, 10) for s in range(10))
    state = train(_gt(), Config.theory(steps=10, batch_size=16, log_every=4, track_every=3), 16, [0], progress=False)
    assert [h["step"] for h in state.history] == [0, 4, 8, 9]
    assert [t["step"] for t in state.tracked] == [0, 3, 6, 9]


def test_a_callback_sees_the_state_and_can_stop_a_run_by_raising():
    class Stop(Callback):
        def after_step(self, run, terms):
            if run.state.step == 2:
                raise TrainingDiverged("stopped by the test")

    with pytest.raises(TrainingDiverged, match="stopped by the test"):
        train(_gt(), Config.theory(steps=5, batch_size=16), 16, [0], progress=False, callback=[Stop()])


def test_the_last_fired_record_matches_the_batch_firing():
    seen = []
    state = train(_gt(), Config.theory(steps=4, batch_size=16), 16, [0], progress=False,
                  callback=lambda st, terms: seen.append(terms["fired"].clone()))
    fired = torch.stack(seen)                                           # (steps, K, n_q)
    last = torch.where(fired.any(0), fired.shape[0] - 1 - fired.flip(0).int().argmax(0), -1)
    assert torch.equal(state.last_fired, last)


def test_tracking_records_named_metrics_at_the_steps_asked():
    assert log_steps(1000, 5) == (0, 5, 31, 177, 999)
    assert log_steps(3, 20) == (0, 1, 2)
    calls = []

    def measure(params, source, cfg):
        calls.append(1)
        return [{"W_E_norm": float(params["W_E"][k].norm())} for k in range(params["W_E"].shape[0])]

    state = train(_gt(), Config.theory(steps=8, batch_size=16), 16, [0, 1], progress=False,
                  callback=Tracking(steps=(0, 3, 7), measure=measure))
    assert [t["step"] for t in state.tracked] == [0, 3, 7] and len(calls) == 3
    assert set(state.tracked[-1]["models"][1]) == {"W_E_norm"} and len(state.tracked[-1]["models"]) == 2
