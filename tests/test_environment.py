"""The three descriptions of the environment (pyproject, requirements.lock, environment.yml) agree."""
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _lock():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_lock_satisfies_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    pins = _lock()
    for text in declared:
        req = Requirement(text)
        name = req.name.lower().replace("_", "-")
        if name == "torch":
            assert str(req.specifier) == "==2.13.0"
            continue
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"
    assert "torch" not in pins, "torch is installed first with its own exact pin, not from the lock"


def test_environment_yml_installs_what_the_makefile_installs():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["torch==2.13.0", "-r requirements.lock", "-e .[book,test]"]
    assert "python=3.11" in env["dependencies"]
    make = (ROOT / "Makefile").read_text()
    assert "TORCH  := torch==2.13.0" in make and "-r requirements.lock" in make
