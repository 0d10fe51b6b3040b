"""Training speed: sdl_paper's TopK trainer against SAELens 6.54.12 `train_toy_sae`, same shapes, batch 1024.

Run with `make bench` (it creates .venv-bench with sae-lens==6.54.12 and this package). Prints a Markdown table and
writes it to benchmarks/RESULTS.md. Not a test: numbers depend on the machine; the table names it.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from sdl_paper.sources import ground_truth
from sdl_paper.engine import trainer as T

SHAPES = {"small": dict(n_p=64, n=96, n_q=1024, k=4), "bench": dict(n_p=768, n=1000, n_q=16000, k=32)}
BATCH = 1024


def peak_gflops(n: int = 2048, reps: int = 5) -> float:
    """Large fp32 matmul rate of this machine (GFLOP/s)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def ours(shape: dict, steps: int, K: int = 1) -> float:
    """Samples per second (all K models together) of the batched TopK trainer."""
    gt = ground_truth.make_world(shape["n_p"], shape["n"], 0.99, 0.3, n_layers=1, seed=0).view([0], [0])
    cfg = T.Config(method="topk", k=shape["k"], batch_size=BATCH, steps=2, log_every=10 ** 9, unit_decoder=True)
    T.train(gt, cfg, shape["n_q"], list(range(K)), progress=False)                       # warm-up
    cfg = T.Config(method="topk", k=shape["k"], batch_size=BATCH, steps=steps, log_every=10 ** 9)
    t = time.perf_counter()
    T.train(gt, cfg, shape["n_q"], list(range(K)), progress=False)
    return K * steps * BATCH / (time.perf_counter() - t)


def useful_flops(shape: dict) -> float:
    """FLOPs of one TopK step that cannot be skipped: the dense encoder matmul plus the k-sparse rest."""
    B, n_p, n_q, k = BATCH, shape["n_p"], shape["n_q"], shape["k"]
    return 2 * B * n_q * n_p + 3 * 2 * B * k * (n_p + n_p)


def sae_lens(shape: dict, steps: int) -> float | None:
    """Samples per second of SAELens's train_toy_sae, or None when sae-lens is not installed."""
    try:
        from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
        from sae_lens.synthetic import ActivationGenerator, FeatureDictionary, train_toy_sae
    except ImportError:
        return None
    fd = FeatureDictionary(shape["n"], shape["n_p"], seed=0)
    gen = ActivationGenerator(shape["n"], firing_probabilities=0.01)

    def run(n_steps):
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=shape["n_p"], d_sae=shape["n_q"], k=shape["k"]))
        t = time.perf_counter()
        train_toy_sae(sae, fd, gen, training_samples=n_steps * BATCH, batch_size=BATCH)
        return time.perf_counter() - t

    run(2)
    return steps * BATCH / run(steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small-steps", type=int, default=300)
    ap.add_argument("--bench-steps", type=int, default=15)
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    args = ap.parse_args()
    peak = peak_gflops()
    rows = []
    for name, shape in SHAPES.items():
        steps = args.small_steps if name == "small" else args.bench_steps
        mine, theirs = ours(shape, steps), sae_lens(shape, steps)
        rows.append((f"TopK SAE, {name}: n_p={shape['n_p']}, n={shape['n']}, n_q={shape['n_q']}, k={shape['k']}",
                     mine, theirs, mine * useful_flops(shape) / BATCH / 1e9))
    seq = ours(SHAPES["small"], args.small_steps // 4)
    batched = ours(SHAPES["small"], args.small_steps // 4, K=16)
    lines = [f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
             f"{torch.__version__}; large fp32 matmul peak {peak:.0f} GFLOP/s. Batch {BATCH}.", "",
             "| workload | sdl_paper samples/s | SAELens samples/s | ratio | sdl_paper GFLOP/s (share of peak) |",
             "|---|---|---|---|---|"]
    for label, mine, theirs, gf in rows:
        ratio = f"{mine / theirs:.2f}x" if theirs else "n/a"
        lines.append(f"| {label} | {mine:,.0f} | {theirs:,.0f} | {ratio} | {gf:.1f} ({gf / peak:.0%}) |"
                     if theirs else f"| {label} | {mine:,.0f} | not installed | {ratio} | {gf:.1f} ({gf / peak:.0%}) |")
    lines.append(f"| 16 small models: batched (K=16) vs one at a time | {batched:,.0f} | {seq:,.0f} (sequential, "
                 f"ours) | {batched / seq:.2f}x | |")
    table = "\n".join(lines)
    print(table)
    Path(args.out).write_text("# Training benchmark\n\nReproduce: `make bench`\n\n" + table + "\n")


if __name__ == "__main__":
    main()
