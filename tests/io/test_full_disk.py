"""A full disk, simulated by a file-size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a write past the limit
fails with EFBIG as one on a full disk fails with ENOSPC): our error, nothing half-written, nothing of the user's
lost, no temporary left beside the output. Each case runs in a child process that sets the limit."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import sdl_paper as sdl

resource = pytest.importorskip("resource")          # POSIX only
LIMIT = 4096                                         # bytes: every file below is larger


def _limited(code: str, cwd, limit: int = LIMIT) -> subprocess.CompletedProcess:
    script = (f"import resource\nresource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
              + textwrap.dedent(code))
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300)


def _small_dictionary(n_q=8):
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    return sdl.Dictionary.from_state(sdl.train(x, sdl.Config.theory(k=2, steps=3, batch_size=16), n_q, [0],
                                               progress=False))


def test_saving_on_a_full_disk_raises_and_keeps_the_previous_dictionary_whole(tmp_path):
    before = _small_dictionary()
    sdl.save_dictionary(before, tmp_path / "d")                       # unlimited: the user's earlier file
    r = _limited("""
        import errno, torch, sdl_paper as sdl
        x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
        st = sdl.train(x, sdl.Config.theory(k=2, steps=3, batch_size=16), 512, [0], progress=False)
        try:
            sdl.save_dictionary(sdl.Dictionary.from_state(st), "d")    # replaces d: larger than the limit
        except OSError as e:
            raise SystemExit(3 if e.errno == errno.EFBIG else 4)
        """, tmp_path)
    assert r.returncode == 3, r.stderr                               # raised the disk's error, not a crash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]        # no temporary left beside it
    after = sdl.load_dictionary(tmp_path / "d")                       # the earlier dictionary, whole
    assert all(torch.equal(before.params[k], after.params[k]) for k in before.params)


def test_a_checkpoint_on_a_full_disk_stops_training_and_leaves_nothing(tmp_path):
    r = _limited("""
        import errno, torch, sdl_paper as sdl
        x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
        try:
            sdl.train(x, sdl.Config.theory(k=2, steps=3, batch_size=16), 512, [0], progress=False,
                      checkpoint="ck")
        except OSError as e:
            raise SystemExit(3 if e.errno == errno.EFBIG else 4)
        """, tmp_path)
    assert r.returncode == 3, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_audit_plot_on_a_full_disk_is_our_error_and_leaves_no_temporary(tmp_path):
    d = _small_dictionary(n_q=64)
    sdl.save_dictionary(d, tmp_path / "d")
    torch.manual_seed(0)
    import numpy as np
    np.save(tmp_path / "x.npy", torch.randn(256, 8).numpy())
    r = _limited("""
        import sys
        from sdl_paper.book.cli import main
        sys.exit(main(["audit", "d", "--data", "x.npy", "--plot", "density.png"]))
        """, tmp_path)
    assert r.returncode == 2 and "File too large" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "x.npy"]


@pytest.mark.slow
def test_a_chapter_run_on_a_full_disk_exits_1_and_writes_nothing(tmp_path):
    r = _limited("""
        import sys
        from sdl_paper.book.cli import main
        sys.exit(main(["run", "framework", "--preset", "smoke", "--out", "out", "--no-progress", "--no-html"]))
        """, tmp_path, limit=100_000)                               # the kernel starts; an output fails
    assert r.returncode == 1 and "nothing written" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_only_the_io_errors_of_safetensors_become_the_disks_oserror(tmp_path):
    from safetensors import SafetensorError

    from sdl_paper.io.files import _disk_error

    err = _disk_error(SafetensorError("Error while serializing: I/O error: No space left on device "
                                      "(os error 28)"), tmp_path / "d")
    assert isinstance(err, OSError) and err.errno == 28 and str(tmp_path / "d") in str(err)
    assert _disk_error(SafetensorError("Error while serializing: InvalidTensorView"), tmp_path) is None
