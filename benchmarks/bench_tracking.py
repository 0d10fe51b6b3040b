"""What recording curves costs: the LRB chapter's TopK SAE trained with the Tracking callback
(:class:`sdl_paper.studies.lrb.BenchMetrics` at about 20 log-spaced steps), the time spent measuring timed inside
the same run (runs with and without tracking differ by more than that from this machine's drift alone), CPU.

Run with `.venv/bin/python benchmarks/bench_tracking.py [--steps N] [--rounds R]`; writes benchmarks/TRACKING.md.
Not a test: numbers depend on the machine; the table names it. Issue 26 asks tracking to cost under 10% of
training time.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from sdl_paper.studies import lrb
from sdl_paper.training import train
from sdl_paper.training.callbacks import Tracking, log_steps


class Timed:
    """A measure that adds the seconds its calls take."""

    def __init__(self, measure):
        self.measure, self.seconds = measure, 0.0

    def __call__(self, *args):
        t = time.perf_counter()
        out = self.measure(*args)
        self.seconds += time.perf_counter() - t
        return out


def one_run(gt, cfg, seeds) -> tuple[float, float]:
    """(seconds of the whole tracked run, seconds of it spent measuring)."""
    timed = Timed(lrb.BenchMetrics(gt))
    t = time.perf_counter()
    train(gt, cfg, 256, seeds, progress=False, callback=Tracking(steps=log_steps(cfg.steps, 20), measure=timed))
    return time.perf_counter() - t, timed.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    gt = lrb.world(32, 42, 0.95, 0.1, seed=0).view([0], [0])          # the chapter's default bench
    cfg = lrb.row_config("TopK SAE", "standard", k=6, steps=args.steps, batch_size=256)
    seeds = list(range(args.seeds))
    runs = [one_run(gt, cfg, seeds) for _ in range(args.rounds)]
    ratios = [m / (t - m) for t, m in runs]                       # measuring over training alone
    text = f"""# Cost of tracking curves

`.venv/bin/python benchmarks/bench_tracking.py --steps {args.steps} --rounds {args.rounds} --seeds {args.seeds}`
on {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads.
The LRB chapter's TopK SAE (standard practice, n_p = 32, n = 42, n_q = 256, k = 6, batch 256, {args.seeds} seeds as
one batched run), {args.steps} steps, with `Tracking(steps=log_steps({args.steps}, 20),
measure=lrb.BenchMetrics(gt))` ({len(log_steps(args.steps, 20))} tracked steps, 4,096 evaluation samples); the
measure's own calls are timed inside the run.

| round | whole run (s) | measuring (s) | measuring / training |
|---|---|---|---|
""" + "".join(f"| {i + 1} | {t:.2f} | {m:.2f} | {r:.1%} |\n" for i, ((t, m), r) in
              enumerate(zip(runs, ratios))) + f"""
Median: tracking costs {statistics.median(ratios):.1%} of the training time (target: under 10%).
"""
    out = Path(__file__).with_name("TRACKING.md")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
