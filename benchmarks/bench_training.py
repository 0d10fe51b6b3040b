"""Training speed, like for like: sdl_paper's TopK trainer against SAELens 6.54.12's SAETrainer on the same data.

Run with `make bench` (it creates .venv-bench with sae-lens==6.54.12 and this package). Writes a Markdown table to
benchmarks/RESULTS.md. Not a test: numbers depend on the machine; the table names it.

Both sides train one TopK SAE at batch 1024 on the same pre-generated pool of activations (the bench's generator,
section C of the paper), so data generation is not timed on either side; each number is the median of several
runs after a warm-up, each run in its own process, the two sides' runs interleaved. Per step, each side computes:

- **standard** (ours: ``Config.standard("topk")``; SAELens: ``TopKTrainingSAEConfig`` defaults): input minus b_dec,
  the dense encoder product plus b_enc, pre-activations times decoder-row norms, top k, ReLU, decoding with codes
  divided by the norms plus b_dec, squared error, AuxK (coefficient 1, dead window 1000 steps: no latent can be dead
  within these runs on either side, so the aux loss itself is not computed by either), dead-latent counters,
  gradient-norm clipping at 1, Adam lr 3e-4. SAELens decodes densely (a (B, n_q) code matrix times W_dec, and the
  same dense products in the backward pass); ours decodes the k active latents only (sparse products, the same
  numbers up to rounding, tested). The "standard, AuxK on" row sets the dead window to 5 steps on both sides, so
  that AuxK runs.
- **theory** (ours: ``Config.theory(method="topk")``: no biases, decoder columns renormalised after every step, no AuxK, no
  clipping; SAELens with what it lets us switch off: ``apply_b_dec_to_input=False``,
  ``rescale_acts_by_decoder_norm=False``, ``aux_loss_coefficient=0``; its biases and its clipping stay).
- SAELens's own sparse option (``use_sparse_activations=True``) is timed too, as the fastest setting it offers.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from sdl_paper.model import Config
from sdl_paper.training import train
from sdl_paper.data import ground_truth
from sdl_paper.data.arrays import as_source

SHAPES = {"small": dict(n_p=64, n=96, n_q=1024, k=4), "bench": dict(n_p=768, n=1000, n_q=16000, k=32)}
BATCH = 1024


def peak_gflops(n: int = 2048, reps: int = 5) -> float:
    """Large fp32 matmul rate of this machine (GFLOP/s; best of three timings of ``reps`` products)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 * reps / best / 1e9


def pool(shape: dict, n_batches: int) -> torch.Tensor:
    """(n_batches * BATCH, n_p) activations from the bench's generator (S = 0.99, M = 0.3)."""
    gt = ground_truth.make_world(shape["n_p"], shape["n"], 0.99, 0.3, n_layers=1, seed=0).view([0], [0])
    return gt.sample(n_batches * BATCH, torch.Generator().manual_seed(0))[1]


def ours(x: torch.Tensor, shape: dict, practice: str, steps: int, dead_window: int = 1000) -> float:
    """Seconds for ``steps`` steps of one TopK SAE under ``practice`` (after a two-step warm-up that also creates
    the model and the data source, as SAELens's are created before its timer starts)."""
    def cfg(n):
        if practice == "theory":
            return Config.theory(method="topk", k=shape["k"], batch_size=BATCH, steps=n, log_every=10 ** 9)
        return Config.standard("topk", k=shape["k"], batch_size=BATCH, steps=n, log_every=10 ** 9,
                                 dead_window=dead_window)
    source = as_source(x)                   # checks the pool once (finite values), as SAELens's data is made ahead
    state = train(source, cfg(2), shape["n_q"], [0], progress=False)
    t = time.perf_counter()
    train(source, cfg(2 + steps), shape["n_q"], [0], state=state, progress=False)
    return time.perf_counter() - t


def sae_lens(x: torch.Tensor, shape: dict, practice: str, steps: int, sparse: bool = False,
             dead_window: int = 1000) -> float | str | None:
    """Seconds for ``steps`` steps of SAELens's SAETrainer (the loop of ``train_toy_sae``) on batches of ``x``."""
    try:
        from sae_lens import LoggingConfig, TopKTrainingSAE, TopKTrainingSAEConfig
        from sae_lens.config import SAETrainerConfig
        from sae_lens.training.sae_trainer import SAETrainer
    except ImportError:
        return None
    off = dict(apply_b_dec_to_input=False, rescale_acts_by_decoder_norm=False, aux_loss_coefficient=0.0)

    def run(n):
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=shape["n_p"], d_sae=shape["n_q"], k=shape["k"],
                                                    use_sparse_activations=sparse,
                                                    **(off if practice == "theory" else {})))
        batches = iter([x[i * BATCH:(i + 1) * BATCH] for i in range(n)])
        cfg = SAETrainerConfig(total_training_samples=n * BATCH, train_batch_size_samples=BATCH, device="cpu",
                               lr=3e-4, lr_end=3e-4, lr_scheduler_name="constant", adam_beta1=0.9,
                               adam_beta2=0.999, dead_feature_window=dead_window, feature_sampling_window=2000, n_checkpoints=0, checkpoint_path=None,
                               save_final_checkpoint=False,
                               logger=LoggingConfig(log_to_wandb=False, eval_every_n_wandb_logs=2 ** 31 - 1))
        trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=batches)
        t = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - t

    try:
        run(2)
    except NotImplementedError as e:          # use_sparse_activations on the CPU, torch 2.13: see RESULTS.md
        return f"fails: {str(e).splitlines()[0][:70]}"
    return run(steps)


def useful_flops(shape: dict) -> float:
    """FLOPs of one TopK step that no implementation can skip: the dense encoder product (it chooses the latents)
    plus, for the k active latents per sample, the decoder product and the three sparse backward products (decoder
    columns, their codes, encoder rows)."""
    B, n_p, n_q, k = BATCH, shape["n_p"], shape["n_q"], shape["k"]
    return 2 * B * n_q * n_p + 4 * 2 * B * k * n_p


def _run(side: str, shape_name: str, practice: str, steps: int, sparse: bool, kw: dict) -> float | str | None:
    """One timed run in a fresh interpreter that imports only its own side: importing SAELens (4,000 modules)
    makes every small torch operation in the same process ~40% slower, which would tax our runs at the small
    shape. Process start-up and data generation are not timed."""
    job = json.dumps(dict(side=side, shape=shape_name, practice=practice, steps=steps, sparse=sparse, kw=kw))
    out = subprocess.run([sys.executable, __file__, "--worker", job], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worker(job: str) -> None:
    j = json.loads(job)
    shape = SHAPES[j["shape"]]
    x = pool(shape, j["steps"])
    if j["side"] == "ours":
        print(json.dumps(ours(x, shape, j["practice"], j["steps"], **j["kw"])))
    else:
        print(json.dumps(sae_lens(x, shape, j["practice"], j["steps"], sparse=j["sparse"], **j["kw"])))


def timings(shape_name: str, label: str, kw: dict, steps: int, reps: int) -> tuple:
    """(ours, SAELens default, SAELens sparse) in samples per second, the machine's matmul rate, each the median
    of ``reps`` rounds, and the lowest and highest ratio ours / SAELens default of a single round. The runs are
    interleaved (each round times the matmul rate, ours, then SAELens), so that the drift of this machine's speed
    over minutes hits both sides alike; each run is its own process
    (:func:`_run`). SAELens entries are a reason instead of a rate when it is not installed or fails."""
    practice = label.split(",")[0]
    runs = {"peak": [], "ours": [], False: [], True: []}
    failed = {}
    for _ in range(reps):
        runs["peak"].append(peak_gflops())
        runs["ours"].append(_run("ours", shape_name, practice, steps, False, kw))
        for sparse in (False, True):
            if sparse not in failed:
                t = _run("saelens", shape_name, practice, steps, sparse, kw)
                runs[sparse].append(t) if isinstance(t, float) else failed.setdefault(sparse, t)

    def rate(ts):
        return steps * BATCH / statistics.median(ts)
    # each round's own ratio (its two runs back to back): the spread the drift leaves in the median
    rounds = [b / a for a, b in zip(runs["ours"], runs[False])] if False not in failed else []
    return (rate(runs["ours"]), *(failed[s] if s in failed else rate(runs[s]) for s in (False, True)),
            statistics.median(runs["peak"]), (min(rounds), max(rounds)) if rounds else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small-steps", type=int, default=100)
    ap.add_argument("--bench-steps", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5, help="rounds per row (the medians are reported)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args.worker)
    torch.manual_seed(0)
    rows = []
    cases = [("standard", {}), ("standard, AuxK on", {"dead_window": 5}), ("theory", {})]
    shapes = args.shapes.split(",")
    if not set(shapes) <= set(SHAPES):
        ap.error(f"--shapes {args.shapes}: allowed {', '.join(SHAPES)}")
    for name in shapes:
        shape = SHAPES[name]
        steps = args.small_steps if name == "small" else args.bench_steps
        for label, kw in cases:
            mine, dense, sparse, peak, spread = timings(name, label, kw, steps, args.reps)
            rows.append((name, shape, label, mine, dense, sparse, mine * useful_flops(shape) / BATCH / 1e9, peak,
                         spread))
            print(rows[-1][:6], flush=True)
    lines = [f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
             f"{torch.__version__}. Batch {BATCH}; medians of {args.reps} interleaved rounds (each: the large fp32 "
             f"matmul rate, ours, SAELens; each run its own process) of {args.small_steps} (small) and "
             f"{args.bench_steps} (bench) steps after a warm-up; the same pre-generated data on both sides.", "",
             "| shape | practice | sdl_paper samples/s | SAELens samples/s (default) | ratio | rounds' ratios | "
             "SAELens samples/s (use_sparse_activations) | ratio | sdl_paper useful GFLOP/s | matmul GFLOP/s | share |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(v):
        return "not installed" if v is None else v if isinstance(v, str) else f"{v:,.0f}"

    def ratio(a, b):
        return f"{a / b:.2f}x" if isinstance(b, float) else "n/a"
    for name, shape, label, mine, dense, sparse, gf, peak, spread in rows:
        rounds = f"{spread[0]:.2f}-{spread[1]:.2f}x" if spread else "n/a"
        lines.append(f"| {name}: n_p={shape['n_p']}, n_q={shape['n_q']}, k={shape['k']} | {label} | {mine:,.0f} | "
                     f"{fmt(dense)} | {ratio(mine, dense)} | {rounds} | {fmt(sparse)} | {ratio(mine, sparse)} | "
                     f"{gf:.1f} | {peak:.0f} | {gf / peak:.0%} |")
    table = "\n".join(lines)
    print(table)
    Path(args.out).write_text("# Training benchmark (like for like)\n\nReproduce: `make bench`\n\n" + table + "\n")


if __name__ == "__main__":
    main()
