import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdl_paper.sources import ground_truth
from sdl_paper.engine import distributed, trainer as T

SCRIPT = Path(__file__).with_name("ddp_script.py")


def test_one_process_is_world_of_one():
    x = torch.arange(6.0).reshape(1, 6, 1)
    assert distributed.world() == (0, 1)
    assert distributed.shard(x) is x


@pytest.mark.parametrize("method,remedy", [("topk", "none"), ("relu", "resample"), ("jumprelu", "auxk")])
def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path, method, remedy):
    out = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           method, remedy, str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    two = T.load(str(out))
    gt = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])
    cfg = T.Config(method=method, remedy=remedy, steps=25, batch_size=64, lr=1e-2, k=2, log_every=5, dead_window=5,
                   resample_at=(12,) if remedy == "resample" else ())
    one = T.train(gt, cfg, 16, [0, 1], progress=False)
    for name in one.params:
        assert torch.allclose(one.params[name], two.params[name], atol=1e-5), name
    assert torch.equal(one.last_fired, two.last_fired)
    assert torch.allclose(torch.tensor([h["loss"] for h in one.history]), torch.tensor([h["loss"] for h in two.history]),
                          rtol=1e-5)
