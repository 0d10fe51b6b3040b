"""Peak memory of training on an activation file of a few GB, read by rows (writes benchmarks/MEMMAP.md).

    .venv/bin/python benchmarks/memmap_memory.py [GB]

Writes a float32 .npy of about GB gigabytes in chunks (never whole in memory), then, in a fresh process, trains a
TopK SAE on it with ``sdl_paper.train(path, ...)`` and reports the process's memory from /proc/self/status:
RssAnon (anonymous memory: what the process itself holds), RssFile (file-backed pages: the shared libraries
and the pages of the data file, which is read through a read-only memory map: clean page cache the kernel can
drop) and VmHWM (peak resident set, both kinds). Peak anonymous memory is sampled every step by a callback. The
file is deleted afterwards.
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("MEMMAP.md")
WIDTH = 256
CHILD = r"""
import sys, time, torch, sdl_paper as sdl
def status():
    d = dict(l.split(":", 1) for l in open("/proc/self/status"))
    return {k: int(d[k].split()[0]) / 1024 for k in ("RssAnon", "RssFile", "VmHWM")}
peak = [0.0]
def cb(state, terms):
    peak[0] = max(peak[0], status()["RssAnon"])
before = status()
t0 = time.perf_counter()
cfg = sdl.Config.theory(method="topk", k=16, steps=int(sys.argv[2]), batch_size=4096, lr=1e-3)
sdl.train(sys.argv[1], cfg, 1024, [0], progress=False, callback=cb)
after = status()
print(before["RssAnon"], peak[0], after["RssFile"], after["VmHWM"], time.perf_counter() - t0)
"""


def main(gb: float = 3.0, steps: int = 200):
    rows = int(gb * 2 ** 30 / (4 * WIDTH))
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        path = Path(tmp) / "acts.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, WIDTH))
        rng = np.random.default_rng(0)
        for start in range(0, rows, 1 << 20):
            stop = min(rows, start + (1 << 20))
            arr[start:stop] = rng.standard_normal((stop - start, WIDTH), dtype=np.float32)
        arr.flush()
        del arr
        size = path.stat().st_size / 2 ** 30
        out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(steps)], capture_output=True, text=True,
                             check=True).stdout.split()
    anon0, anon_peak, file_rss, hwm, secs = map(float, out)
    batch_mb = 4096 * WIDTH * 4 / 2 ** 20
    text = (f"# Training on a memory-mapped file\n\nWritten by `.venv/bin/python benchmarks/memmap_memory.py {gb}` on "
            f"{time.strftime('%Y-%m-%d')} (2 cores, no GPU). File: {size:.2f} GiB float32 `.npy`, {rows:,} rows of "
            f"width {WIDTH}; TopK SAE, n_q = 1024, k = 16, batch 4096 ({batch_mb:.0f} MiB per batch), {steps} "
            f"steps ({secs:.0f} s).\n\n| measure | MiB |\n|---|---|\n"
            f"| anonymous memory after `import sdl_paper` (RssAnon) | {anon0:.0f} |\n"
            f"| peak anonymous memory during training (RssAnon, every step) | {anon_peak:.0f} |\n"
            f"| file pages resident at the end (RssFile: shared libraries such as torch, and the data file's pages, "
            "read through a memory map) | "
            f"{file_rss:.0f} |\n| peak resident set, both kinds (VmHWM) | {hwm:.0f} |\n"
            f"| the file | {size * 1024:.0f} |\n\nThe process's own memory grows by "
            f"{anon_peak - anon0:.0f} MiB over import (model, Adam moments, batches), whatever the file's size; only "
            "the pages of rows actually drawn are read from disk.\n")
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
