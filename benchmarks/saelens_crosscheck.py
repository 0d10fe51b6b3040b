"""Peer cross-check: SAELens 6.54.12 and our "standard" practice trained on the SAME data stream, evaluated with
both libraries' metrics (run in .venv-bench, not in CI):

    .venv-bench/bin/python benchmarks/saelens_crosscheck.py    # writes benchmarks/SAELENS_CROSSCHECK.md

For each seed, one stream of ground-truth codes (our generator) is drawn once; SAELens's ``train_toy_sae`` sees
it through a FeatureDictionary holding our feature directions, our engine through an iterable of the same
batches (x_p = codes @ W_p^T, the same floats). Both use SAELens's defaults as ``sdl_paper.Config.standard`` reads
them (lr 3e-4, decoder norm 0.1 at init, W_E = W_D^T, b_dec subtracted from the input, TopK with decoder-norm
rescaling and AuxK, L1 weighted by decoder norms, gradient clipping 1.0). Initialisations differ (SAELens:
kaiming-uniform rows; ours: Gaussian columns), so agreement is statistical: mean and standard error over seeds.
Each final dictionary is scored by our metrics and by SAELens's ``mean_correlation_coefficient`` (decoder MCC).
"""
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
import sae_lens  # noqa: E402
from sae_lens.synthetic import FeatureDictionary, mean_correlation_coefficient, train_toy_sae  # noqa: E402

import saelens_stream  # noqa: E402
import sdl_paper as sdl  # noqa: E402
from saelens_stream import Replay  # noqa: E402
from sdl_paper.theory import metrics  # noqa: E402

OUT = Path(__file__).with_name("SAELENS_CROSSCHECK.md")
SEEDS, STEPS, BATCH, N_Q, K, L1 = [0, 1, 2], int(sys.argv[1]) if len(sys.argv) > 1 else 2000, 1024, 256, 4, 0.03
torch.set_num_threads(2)
world = sdl.make_world(n_p=64, n=128, S=0.97, M=0.15, n_layers=1, seed=0)
gt = world.view([0], [0])
x_eval = gt.sample(8192, torch.Generator().manual_seed(12345))[1]


def stream(seed):
    return saelens_stream.stream(gt, seed, STEPS, BATCH)


def scores(W_D, codes, x_hat, seconds):
    """Our metrics, SAELens's MCC, L0, explained variance and dead fraction on the evaluation set."""
    return {"MCC (ours)": metrics.hungarian_mcc(W_D, gt.W_r),
            "MCC (SAELens)": float(mean_correlation_coefficient(W_D.T.contiguous(), gt.W_r.T.contiguous())),
            "M_GT dec": metrics.gt_recovery(gt.W_r, decoder=W_D), "L0": metrics.l0(codes),
            "EV": metrics.explained_variance(x_eval, x_hat), "dead": metrics.sample_dead_fraction(codes),
            "s": seconds}


rows = {}
for method, theirs in (("topk", "topk"), ("relu_dec", "standard")):
    for seed in SEEDS:
        codes = stream(seed)
        torch.manual_seed(seed)
        fd = FeatureDictionary(gt.n, gt.n_p, initializer=None)
        fd.feature_vectors.data = gt.W_p.T.clone()
        sae = (sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(d_in=64, d_sae=N_Q, k=K)) if theirs == "topk"
               else sae_lens.StandardTrainingSAE(sae_lens.StandardTrainingSAEConfig(d_in=64, d_sae=N_Q,
                                                                                    l1_coefficient=L1)))
        t0 = time.perf_counter()
        train_toy_sae(sae, fd, Replay(codes), training_samples=STEPS * BATCH, batch_size=BATCH, lr=3e-4)
        t_theirs = time.perf_counter() - t0
        with torch.no_grad():
            z = sae.encode(x_eval)
            rows.setdefault((method, "SAELens"), []).append(scores(sae.W_dec.detach().T, z, sae.decode(z),
                                                                   t_theirs))
        cfg = sdl.Config.standard(method, k=K, l1=L1, steps=STEPS, batch_size=BATCH)
        t0 = time.perf_counter()
        state = sdl.train(iter([c @ gt.W_p.T for c in codes]), cfg, N_Q, [seed], progress=False)
        t_ours = time.perf_counter() - t0
        d = sdl.Dictionary.from_state(state)
        z = d.encode(x_eval)
        rows.setdefault((method, "ours"), []).append(scores(d.params["W_D"][0], z, d.decode(z), t_ours))
        print(method, seed, rows[(method, "SAELens")][-1], rows[(method, "ours")][-1], flush=True)


def cell(values):
    m = statistics.mean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return f"{m:.3f} ± {se:.3f}"


keys = list(next(iter(rows.values()))[0])
lines = ["| method | trained by | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
for (method, who), rs in rows.items():
    lines.append(f"| {method} | {who} | " + " | ".join(cell([r[k] for r in rs]) for k in keys) + " |")
agree = max(abs(r["MCC (ours)"] - r["MCC (SAELens)"]) for rs in rows.values() for r in rs)
OUT.write_text(
    f"# Cross-check against SAELens {sae_lens.__version__}: same data, same defaults\n\n"
    f"Written by `.venv-bench/bin/python benchmarks/saelens_crosscheck.py {STEPS}` (CPU, 2 threads). World: n_p = 64, "
    f"n = 128, S = 0.97, M = 0.15; n_q = {N_Q}, k = {K}, L1 = {L1}; {STEPS} steps of {BATCH}; seeds {SEEDS}; "
    "mean ± standard error over seeds, on 8192 fresh samples.\n\n" + "\n".join(lines) + "\n\n"
    f"The two MCC implementations differ by at most {agree:.2e} on the same dictionary. `s`: training seconds "
    "(SAELens's `train_toy_sae` against our engine; not a like-for-like speed benchmark).\n")
print(OUT.read_text())
