"""Run by tests/training/test_distributed.py under torchrun: for each METHOD:REMEDY case, train on two processes and
save rank 0's final state as OUT_DIR/METHOD-REMEDY.pt (one launch for all cases: each launch costs seconds)."""
import sys
from pathlib import Path

import torch

from sdl_paper.data import ground_truth
from sdl_paper.model import Config
from sdl_paper.training import save_checkpoint, train
from sdl_paper.training import distributed

if __name__ == "__main__":
    distributed.init_from_env("gloo")
    torch.set_num_threads(1)
    out_dir, cases = Path(sys.argv[1]), sys.argv[2:]
    gt = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])
    for case in cases:
        method, remedy = case.split(":")
        cfg = Config(method=method, remedy=remedy, steps=25, batch_size=64, lr=1e-2, k=2, log_every=5,
                       dead_window=5, resample_at=(12,) if remedy == "resample" else ())
        state = train(gt, cfg, 16, [0, 1], progress=False)
        if distributed.world()[0] == 0:
            save_checkpoint(state, str(out_dir / f"{method}-{remedy}.pt"))
    torch.distributed.destroy_process_group()
