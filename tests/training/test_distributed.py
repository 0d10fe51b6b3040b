import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdl_paper.data import ground_truth
from sdl_paper.model import Config
from sdl_paper.training import load_checkpoint, train
from sdl_paper.training import distributed

SCRIPT = Path(__file__).with_name("ddp_script.py")


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
    two = load_checkpoint(str(two_process_runs / f"{method}-{remedy}.pt"))
    gt = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])
    cfg = Config(method=method, remedy=remedy, steps=25, batch_size=64, lr=1e-2, k=2, log_every=5, dead_window=5,
                   resample_at=(12,) if remedy == "resample" else ())
    one = train(gt, cfg, 16, [0, 1], progress=False)
    for name in one.params:
        assert torch.allclose(one.params[name], two.params[name], atol=1e-5), name
    assert torch.equal(one.last_fired, two.last_fired)
    assert torch.allclose(torch.tensor([h["loss"] for h in one.history]), torch.tensor([h["loss"] for h in two.history]),
                          rtol=1e-5)
