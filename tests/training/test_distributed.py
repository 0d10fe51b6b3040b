import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdl_paper.training import load_checkpoint
from sdl_paper.training import distributed

SCRIPT = Path(__file__).with_name("ddp_script.py")
_spec = importlib.util.spec_from_file_location("ddp_script", SCRIPT)
SCRIPT_MODULE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SCRIPT_MODULE)


def test_one_process_is_world_of_one():
    x = torch.arange(6.0).reshape(1, 6, 1)
    assert distributed.world() == (0, 1)
    assert distributed.shard(x) is x


CASES = [("topk", "none"), ("relu", "resample"), ("jumprelu", "auxk")]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """One torchrun launch (two gloo processes) training every case; its folder of final states."""
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           str(out), *(f"{m}:{r}" for m, r in CASES)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.mark.parametrize("method,remedy", CASES)
def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(two_process_runs, method, remedy):
    # float64 on both sides (see ddp_script): the tolerances are float64 rounding of 25 Adam steps, far below any
    # difference a wrong all-reduce (a sum instead of a mean, a missing tensor) would make
    two = load_checkpoint(str(two_process_runs / f"{method}-{remedy}.pt"))
    one = SCRIPT_MODULE.train_case(method, remedy)
    for name in one.params:
        assert one.params[name].dtype == two.params[name].dtype == torch.float64, name
        assert torch.allclose(one.params[name], two.params[name], rtol=1e-9, atol=1e-10), name
    assert torch.equal(one.last_fired, two.last_fired)
    # the logged loss is stored in float32: equal up to one float32 rounding step (1.2e-7 relative)
    assert torch.allclose(torch.tensor([h["loss"] for h in one.history]),
                          torch.tensor([h["loss"] for h in two.history]), rtol=1e-6)
