"""Every Python example in README.md runs, in a fresh folder, as a user would paste it."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_the_examples_a_user_needs():
    text = "\n".join(BLOCKS)
    for needed in ("sdl.train(\"acts.npy\"", "save_dictionary", "load_dictionary", "export_saelens", "audit",
                   "import_saelens"):
        assert needed in text, f"README has no example of {needed}"


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_runs(i, tmp_path):
    code = BLOCKS[i]
    if "import sae_lens" in code and importlib.util.find_spec("sae_lens") is None:
        pytest.skip("needs SAELens (.venv-bench)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"SDL_PROGRESS": "0", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, f"README example {i} failed:\n{code}\n{out.stderr[-3000:]}"
