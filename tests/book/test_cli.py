import json
import re

import nbformat
import pytest

from sdl_paper.book.cli import main


@pytest.mark.parametrize("args,match", [
    (["run", "nope"], "unknown chapter 'nope'"),
    (["run", "framework", "-p", "S", "1.5"], "'S'=1.5 is out of range"),
    (["run", "framework", "-p", "bogus", "1"], "has no parameter 'bogus'"),
    (["run", "framework", "-p", "n_q", "lots"], "'n_q': 'lots' is not a valid int"),
    (["run", "framework", "-p", "activation", "topk:500"], "k <= n_q"),
    (["run", "framework", "--preset", "smoke", "-p", "M", "0.0", "-p", "n", "100"], "'M'=0.0 cannot be reached"),
    (["run", "framework", "-p", "S", "0.999999999"], "features must fire"),
    (["run", "resampling", "-p", "S", "0.999999999"], "features must fire"),
    (["run", "dead_neurons", "-p", "S_values", "0.9,0.9999999"], "features must fire at every S"),
    (["run", "spurious_minima", "--preset", "smoke", "-p", "n", "8", "-p", "n_q", "10"], "need 3 * n_poly <= n"),
    pytest.param(["run", "resampling", "-p", "device", "cuda"], "sees no CUDA device",
                 marks=pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")),
])
def test_bad_input_exits_non_zero_and_writes_nothing(tmp_path, capsys, args, match):
    out = tmp_path / "out"
    assert main(args + ["--out", str(out)]) == 2
    assert match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["/proc/nope", "/etc/passwd/sub"])
def test_an_unwritable_output_folder_is_refused_before_running(tmp_path, capsys, out):
    assert main(["run", "framework", "--out", out]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_list_shows_parameters_defaults_and_ranges(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "framework" in text and "float in [0, 1)" in text and "preset smoke" in text


@pytest.mark.slow
def test_a_run_writes_an_executed_notebook_that_reflects_the_new_value(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "framework", "--preset", "smoke", "-p", "n_q", "48", "--out", str(out), "--no-progress"]) == 0
    nb = nbformat.read(out / "framework.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters["n_q"] == 48
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "n_q=48" in text
    assert {p.name for p in (out / "figures").iterdir()} >= {"fig_interference.png", "fig_training.png"}
    page = (out / "framework.html").read_text()
    assert "{glue:text}" not in page and "glue:text" not in page, "a glued value was left as a placeholder"
    assert 'pasted-text">48<' in page                           # the new n_q, pasted into the prose
    assert (out / "_static" / "mathjax" / "tex-chtml.js").is_file() and "Traceback" not in page
    images = re.findall(r'<img[^>]* src="([^"]+)"', page)
    assert images and all((out / src).is_file() for src in images), images    # every figure is there


def test_audit_reads_our_folders_and_saelens_folders_and_names_bad_input(tmp_path, capsys):
    import numpy as np
    import torch

    import sdl_paper as sdl

    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "acts.npy", x.numpy())
    np.save(tmp_path / "W.npy", np.eye(8, dtype=np.float32))
    cfg = sdl.Config.theory(k=2, steps=10, batch_size=32)
    d = sdl.Dictionary.from_state(sdl.train(x, cfg, 16, [0], progress=False))
    sdl.save_dictionary(d, tmp_path / "d")
    sdl.export_saelens(d, tmp_path / "sae")
    for path in ("d", "sae"):
        assert main(["audit", str(tmp_path / path), "--data", str(tmp_path / "acts.npy"), "--directions",
                     str(tmp_path / "W.npy")]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["method"] == "topk" and report["L0"] <= 2 and "M_GT_dec" in report
    assert main(["audit", str(tmp_path / "nothing")]) == 2
    assert "no such dictionary folder" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "d"), "--model", "3"]) == 2
    assert "this file holds 1 models" in capsys.readouterr().err


def test_an_output_folder_with_files_that_are_not_ours_is_refused_before_running(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "mine.png").write_bytes(b"user data")
    assert main(["run", "framework", "--preset", "smoke", "--out", str(out)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (out / "figures" / "mine.png").read_bytes() == b"user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_placing_outputs_replaces_only_our_files_and_keeps_the_users(tmp_path):
    from sdl_paper.book import chapters
    from sdl_paper.book.runner import MANIFEST, _place

    out = tmp_path / "out"

    def run(name, files):
        tmp = tmp_path / f".tmp-{name}-{len(list(tmp_path.iterdir()))}"
        for f, text in files.items():
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            (tmp / f).write_text(text)
        _place(tmp, out, name)

    run("a", {"a.ipynb": "1", "figures/x.png": "1", "figures/old.png": "1"})
    (out / "figures" / "mine.png").write_text("user")                  # the user adds a file of their own
    run("a", {"a.ipynb": "2", "figures/x.png": "2"})                   # a re-run: replaces ours, drops old.png
    assert (out / "a.ipynb").read_text() == "2" and not (out / "figures" / "old.png").exists()
    assert (out / "figures" / "mine.png").read_text() == "user"
    with pytest.raises(chapters.ChapterFailed, match="mine.png"):
        run("b", {"b.ipynb": "1", "figures/mine.png": "theirs"})      # would replace the user's file: refused
    assert (out / "figures" / "mine.png").read_text() == "user" and not (out / "b.ipynb").exists()
    assert json.loads((out / MANIFEST).read_text()) == {"a": ["a.ipynb", "figures/x.png"]}


def test_audit_refuses_non_finite_results_and_a_sample_count_below_one(tmp_path, capsys):
    import numpy as np
    import torch

    import sdl_paper as sdl

    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    d = sdl.Dictionary.from_state(sdl.train(x, sdl.Config.theory(k=2, steps=5, batch_size=32), 16, [0], progress=False))
    sdl.save_dictionary(d, tmp_path / "d")
    bad = x.numpy().copy()
    bad[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    assert main(["audit", str(tmp_path / "d"), "--data", str(tmp_path / "nan.npy")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "non-finite" in captured.err
    with pytest.raises(SystemExit) as e:
        main(["audit", str(tmp_path / "d"), "--samples", "0"])
    assert e.value.code == 2 and "must be >= 1" in capsys.readouterr().err


def _start_run(tmp_path):
    """``sdl-paper run framework --preset smoke`` in a session of its own, returned once its kernel runs (the
    chapter's cells; the smoke run ends a few seconds later), with the kernels' process ids."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "sdl_paper.book.cli", "run", "framework", "--preset", "smoke",
                             "--out", str(tmp_path / "out"), "--no-progress", "--no-html"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not (kernels := _kernels_of(proc.pid)):
        assert proc.poll() is None and time.time() < deadline, "the run ended or its kernel never started"
        time.sleep(0.1)
    time.sleep(1)
    return proc, kernels


def _kernels_of(pid: int) -> list[int]:
    """The ipykernel processes whose parent is ``pid`` (read from /proc)."""
    from pathlib import Path

    found = []
    for d in Path("/proc").iterdir():
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) if d.name.isdigit() else None
            if ppid == pid and b"ipykernel" in (d / "cmdline").read_bytes():
                found.append(int(d.name))
        except (OSError, IndexError, ValueError):      # a process that ended meanwhile
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="reads /proc")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_run_within_seconds_and_leaves_nothing(tmp_path, sig):
    import os
    import signal
    import time

    proc, _ = _start_run(tmp_path)
    sent = time.time()
    os.killpg(proc.pid, getattr(signal, sig))       # as a terminal's Ctrl-C: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, sig) and "nothing written" in err, (proc.returncode, err)
    assert "Traceback" not in err, err               # the kernel's teardown is not printed
    assert time.time() - sent < 30
    assert list(tmp_path.iterdir()) == []                             # no temporary folder, no output


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="reads /proc")
def test_a_run_whose_kernel_dies_says_so_and_leaves_nothing(tmp_path):
    import os
    import signal

    proc, kernels = _start_run(tmp_path)
    for pid in kernels:                              # as the out-of-memory killer would
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert kernels and proc.returncode == 1, err
    assert "its kernel died" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_audit_takes_a_transcoders_targets_and_plots_the_feature_density(tmp_path, capsys):
    import numpy as np
    import torch

    import sdl_paper as sdl

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 8, generator=g)
    y = torch.relu(x @ torch.randn(8, 8, generator=g))
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    state = sdl.train(sdl.as_source(x, y), sdl.Config.theory(k=2, steps=20, batch_size=32), 16, [0], progress=False)
    sdl.save_dictionary(sdl.Dictionary.from_state(state), tmp_path / "tc")
    base = ["audit", str(tmp_path / "tc"), "--data", str(tmp_path / "x.npy")]
    assert main(base) == 2 and "pass targets=" in capsys.readouterr().err
    assert main(base + ["--targets", str(tmp_path / "y.npy"), "--plot", str(tmp_path / "density.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["explained_variance_of"] == "the targets"
    assert (tmp_path / "density.png").read_bytes()[:4] == b"\x89PNG"
    assert main(base + ["--targets", str(tmp_path / "y.npy"), "--plot", str(tmp_path / "density.png")]) == 2
    assert "exists" in capsys.readouterr().err
