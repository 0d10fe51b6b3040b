"""A regular (non-editable) install: the wheel carries the chapters, and its sdl-paper runs one."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_wheel_install_finds_and_runs_its_chapters(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # this environment's setuptools builds it (no isolated build environment to install: seconds, not a minute)
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("sdl_paper-*.whl"))
    site = tmp_path / "site"            # the package alone; its dependencies come from this environment
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(site))
    where = subprocess.run([sys.executable, "-c", "import sdl_paper.book.chapters as c; print(c.__file__); "
                            "print(c.NOTEBOOKS)"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), f"not the installed copy: {where}"
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "sdl_paper.book.cli", "run", "absorption_theory", "--preset", "smoke",
                          "--no-progress", "--no-html", "--out", str(out)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "absorption_theory.ipynb").is_file()
