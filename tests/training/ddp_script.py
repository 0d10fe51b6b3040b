"""Run by tests/training/test_distributed.py under torchrun: for each METHOD:REMEDY case, train on two processes and
save rank 0's final state as OUT_DIR/METHOD-REMEDY.pt (one launch for all cases: each launch costs seconds).

Both sides train in float64: two processes sum gradients in another order than one, and in float32 that rounding
difference can move a sample across a JumpReLU threshold or a top-k tie, after which the runs drift apart by far
more than rounding (seen on an Intel AVX-512 CPU, not on an AMD one). In float64 the summation-order difference is
about 1e-16 relative, so the comparison holds on any x86-64 CPU and thread count."""
import sys
from pathlib import Path

import torch

from sdl_paper.data import ground_truth
from sdl_paper.model import Config
from sdl_paper.model.methods import METHODS
from sdl_paper.training import save_checkpoint, train
from sdl_paper.training import distributed


def train_case(method: str, remedy: str):
    """The final state of one case, trained in float64 (the caller's default dtype is restored)."""
    world = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0)
    gt = ground_truth.World([w.double() for w in world.layers], world.coefficients).view([0], [0])
    k = {"k": 2} if METHODS[method].uses_k else {}       # k is refused where it has no effect
    cfg = Config.theory(method=method, remedy=remedy, steps=25, batch_size=64, lr=1e-2, log_every=5, dead_window=5,
                 resample_at=(12,) if remedy == "resample" else (), **k)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return train(gt, cfg, 16, [0, 1], progress=False)
    finally:
        torch.set_default_dtype(before)


if __name__ == "__main__":
    distributed.init_from_env("gloo")
    torch.set_num_threads(1)
    out_dir, cases = Path(sys.argv[1]), sys.argv[2:]
    for case in cases:
        method, remedy = case.split(":")
        state = train_case(method, remedy)
        if distributed.world()[0] == 0:
            save_checkpoint(state, str(out_dir / f"{method}-{remedy}.pt"))
    torch.distributed.destroy_process_group()
