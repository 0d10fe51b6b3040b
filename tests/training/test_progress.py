"""Progress bars show in a terminal and hide in books, papermill runs and logs."""
import io
import sys

from sdl_paper.training import progress


def test_bars_hide_without_a_terminal_and_follow_the_environment(monkeypatch):
    monkeypatch.delenv("SDL_PROGRESS", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())          # what a log file looks like
    assert not progress.visible() and progress.visible(True) and not progress.visible(False)
    monkeypatch.setitem(sys.modules, "ipykernel", object())    # a Jupyter kernel: shown unless SDL_PROGRESS=0
    assert progress.visible()
    monkeypatch.setenv("SDL_PROGRESS", "1")
    assert progress.visible() and not progress.visible(False)
    monkeypatch.setenv("SDL_PROGRESS", "0")
    assert not progress.visible(True)


def test_a_hidden_bar_writes_nothing_and_still_iterates(monkeypatch):
    err = io.StringIO()
    monkeypatch.delenv("SDL_PROGRESS", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress.bar(range(3), desc="x")) == [0, 1, 2]
    assert err.getvalue() == ""
