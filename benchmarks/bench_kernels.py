"""The sparse TopK path's kernel choices, timed against the alternative each replaces (CPU).

Run with `.venv/bin/python benchmarks/bench_kernels.py` (a minute or two); writes benchmarks/KERNELS.md. Not a
test: numbers depend on the machine; the table names it. Each cell is the best of 5 timings of a loop, in
microseconds, at batch B = 1024 and one model, on random pre-activations; the choices in
:mod:`sdl_paper.model.sparse` cite these rows:

- ``top_k`` (two rounds over strided chunks, for k <= 4, k >= 32 or n >= 4096) against ``torch.topk``;
- ``dead_top_k`` (AuxK: the dead columns gathered, then the top-k) against the top-k of z with the live latents
  at -inf (what SAELens computes), at several dead fractions;
- ``rows_product`` by index_add_ (``plan = ()``) against the latent sort and CSR product (``latent_order``),
  per product, the sort's cost shared by the backward pass's two products.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from sdl_paper.model import sparse as S

B = 1024


def best_us(f, n: int) -> float:
    f()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            f()
        times.append((time.perf_counter() - t) / n * 1e6)
    return min(times)


def reps(work: int) -> int:
    return max(2, int(3e7 / work))


def top_k_rows():
    for n, k in [(1024, 1), (1024, 4), (1024, 8), (1024, 16), (1024, 32), (16000, 32), (16000, 384)]:
        z = torch.randn(1, B, n)
        yield (f"top_k, n = {n}, k = {k}", best_us(lambda: z.topk(k, dim=-1), reps(B * n)),
               best_us(lambda: S.top_k(z, k), reps(B * n)))


def dead_rows():
    for n, k in [(1024, 32), (16000, 384)]:
        for frac in (0.05, 0.1, 0.5):
            z = torch.randn(1, B, n)
            dead = torch.rand(1, n, generator=torch.Generator().manual_seed(0)) < frac
            yield (f"dead_top_k, n = {n}, k_aux = {k}, {frac:.0%} dead",
                   best_us(lambda: S.top_k(torch.where(dead[:, None], z, float("-inf")), k), reps(B * n)),
                   best_us(lambda: S.dead_top_k(z, dead, k), reps(B * n)))


def rows_rows():
    for n_q, k, n in [(1024, 4, 64), (1024, 16, 64), (1024, 32, 64), (4096, 32, 256), (16000, 32, 768)]:
        vals, idx = torch.randn(B, n_q).topk(k, dim=-1)
        X, out = torch.randn(B, n), torch.zeros(n_q, n)

        def csr():                          # the sort once per two products: half of it per product
            return S.rows_product(vals, idx, X, n_q, out, S.latent_order(idx, n_q))
        sort = best_us(lambda: S.latent_order(idx, n_q), reps(B * k * n))
        yield (f"rows_product, B k n = 2^{(B * k * n).bit_length() - 1} (n_q = {n_q}, k = {k}, n = {n})",
               best_us(csr, reps(B * k * n)) - sort / 2,
               best_us(lambda: S.rows_product(vals, idx, X, n_q, out, ()), reps(B * k * n)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("KERNELS.md")))
    args = ap.parse_args()
    lines = ["# Sparse TopK kernels", "", "Reproduce: `.venv/bin/python benchmarks/bench_kernels.py`", "",
             f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}. "
             f"B = {B}, one model; best of 5 timings, microseconds.", "",
             "| operation | alternative (us) | ours (us) | ours / alternative | the alternative |", "|---|---|---|---|---|"]
    what = {"top_k": "torch.topk", "dead_top_k": "top-k of z with live latents at -inf",
            "rows_product": "latent sort (half) + CSR product"}
    for gen in (top_k_rows, dead_rows, rows_rows):
        for name, alt, ours in gen():
            row = f"| {name} | {alt:,.0f} | {ours:,.0f} | {ours / alt:.2f} | {what[name.split(',')[0]]} |"
            print(row, flush=True)
            lines.append(row)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
