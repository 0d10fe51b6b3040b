"""Run by tests/test_distributed.py under torchrun: train on two processes and save rank 0's final state."""
import sys

import torch

from sdl_paper.sources import ground_truth
from sdl_paper.engine import distributed, trainer as T

if __name__ == "__main__":
    distributed.init_from_env("gloo")
    torch.set_num_threads(1)
    method, remedy, out = sys.argv[1], sys.argv[2], sys.argv[3]
    gt = ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])
    cfg = T.Config(method=method, remedy=remedy, steps=25, batch_size=64, lr=1e-2, k=2, log_every=5, dead_window=5,
                   resample_at=(12,) if remedy == "resample" else ())
    state = T.train(gt, cfg, 16, [0, 1], progress=False)
    if distributed.world()[0] == 0:
        T.save(state, out)
    torch.distributed.destroy_process_group()
