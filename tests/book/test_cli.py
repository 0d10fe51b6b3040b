import json

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


def test_audit_reads_our_folders_and_saelens_folders_and_names_bad_input(tmp_path, capsys):
    import numpy as np
    import torch

    import sdl_paper as sdl

    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "acts.npy", x.numpy())
    np.save(tmp_path / "W.npy", np.eye(8, dtype=np.float32))
    d = sdl.Dictionary.from_state(sdl.train(x, sdl.Config(k=2, steps=10, batch_size=32), 16, [0], progress=False))
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
