"""Peer cross-check of training curves: SAELens 6.54.12 and our "standard" practice, TopK SAE, on the SAME data
stream of the Linear Representation Bench chapter's default world, at two learning rates; encoder-row and
decoder-column M_GT at matching steps, their peaks and final values (run in .venv-bench, not in CI):

    .venv-bench/bin/python benchmarks/saelens_curves.py [STEPS]    # writes benchmarks/SAELENS_CURVES.md

SAELens's curve comes from ``train_toy_sae``'s snapshots (evenly spaced, ``snapshot_fn`` sees the trainer) and
from the final dictionary; our engine records the same steps (the Tracking callback). Initialisations differ (SAELens: kaiming-uniform rows; ours: Gaussian
columns), so agreement is statistical: mean and standard error over seeds, compared with the tolerance stated in
the results file.
"""
import statistics
import sys
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
import sae_lens  # noqa: E402
from sae_lens.synthetic import FeatureDictionary, train_toy_sae  # noqa: E402

import saelens_stream  # noqa: E402
import sdl_paper as sdl  # noqa: E402
from saelens_stream import Replay  # noqa: E402
from sdl_paper.studies import lrb  # noqa: E402
from sdl_paper.theory import metrics  # noqa: E402
from sdl_paper.training.callbacks import Tracking  # noqa: E402

OUT = Path(__file__).with_name("SAELENS_CURVES.md")
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
SEEDS, LRS, BATCH, N_Q, K = [0, 1, 2], [3e-4, 1e-3], 128, 128, 6
N_SNAPSHOTS = 11
torch.set_num_threads(2)
gt = lrb.world(32, 42, 0.95, 0.1, seed=0).view([0], [0])


def stream(seed):
    return saelens_stream.stream(gt, seed, STEPS, BATCH)


def recovery(W_E, W_D):
    """Encoder-row and decoder-column M_GT (tau 0.95) of one dictionary, W_E (n_q, n_p), W_D (n_p, n_q)."""
    r = metrics.recovery(W_E, W_D, gt.W_p, gt.W_p, 0.95)
    return {"enc": r["M_GT_enc"], "dec": r["M_GT_dec"]}


def saelens_curve(codes, seed, lr):
    """{steps seen: recovery} at SAELens's snapshots and at the end of one run."""
    torch.manual_seed(seed)
    fd = FeatureDictionary(gt.n, gt.n_p, initializer=None)
    fd.feature_vectors.data = gt.W_p.T.clone()
    sae = sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(d_in=gt.n_p, d_sae=N_Q, k=K))
    out = {}

    def snap(trainer):
        out[trainer.n_training_samples // BATCH] = recovery(trainer.sae.W_enc.detach().T.clone(),
                                                            trainer.sae.W_dec.detach().T.clone())
    train_toy_sae(sae, fd, Replay(codes), training_samples=STEPS * BATCH, batch_size=BATCH, lr=lr,
                  n_snapshots=N_SNAPSHOTS, snapshot_fn=snap)
    out[STEPS] = recovery(sae.W_enc.detach().T, sae.W_dec.detach().T)
    return out


def our_curve(codes, seed, lr, steps):
    """{steps seen: recovery} of our standard practice at ``steps``."""
    def measure(params, source, cfg):
        return [recovery(params["W_E"][0].detach(), params["W_D"][0].detach())]
    track = Tracking(steps=tuple(s - 1 for s in steps), measure=measure)
    cfg = sdl.Config.standard("topk", k=K, lr=lr, steps=STEPS, batch_size=BATCH)
    state = sdl.train(iter([c @ gt.W_p.T for c in codes]), cfg, N_Q, [seed], progress=False, callback=track)
    return {t["step"] + 1: t["models"][0] for t in state.tracked}


def mean_se(values):
    m = statistics.mean(values)
    return m, (statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0)


curves = {}                                   # (who, lr) -> seed -> step -> {"enc", "dec"}
for seed in SEEDS:
    codes = stream(seed)
    for lr in LRS:
        theirs = saelens_curve(codes, seed, lr)
        curves.setdefault(("SAELens", lr), {})[seed] = theirs
        curves.setdefault(("ours", lr), {})[seed] = our_curve(codes, seed, lr, sorted(theirs))
        print(seed, lr, curves[("SAELens", lr)][seed][STEPS], curves[("ours", lr)][seed][STEPS], flush=True)

CHECKPOINTS = sorted(curves[("SAELens", LRS[0])][SEEDS[0]])
assert all(sorted(c) == CHECKPOINTS for cs in curves.values() for c in cs.values()), "steps differ"
lines, verdicts = [], []
for lr in LRS:
    lines += [f"\n### lr {lr:g}\n", "| step | " + " | ".join(f"{w} enc | {w} dec" for w in ("SAELens", "ours")) + " |",
              "|---|---|---|---|---|"]
    for s in CHECKPOINTS:
        cells = []
        for who in ("SAELens", "ours"):
            for key in ("enc", "dec"):
                m, e = mean_se([curves[(who, lr)][seed][s][key] for seed in SEEDS])
                cells.append(f"{m:.3f} ± {e:.3f}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    for what in ("peak", "final"):
        stats = {}
        for who in ("SAELens", "ours"):
            per_seed = [max(c[s]["enc"] for s in CHECKPOINTS) if what == "peak" else c[STEPS]["enc"]
                        for c in curves[(who, lr)].values()]
            stats[who] = mean_se(per_seed)
        (a, ea), (b, eb) = stats["SAELens"], stats["ours"]
        tol = 2 * (ea ** 2 + eb ** 2) ** 0.5 + 1 / gt.n
        verdicts.append((lr, what, a, ea, b, eb, tol, abs(a - b) <= tol))

table = ["| lr | encoder-row M_GT | SAELens | ours | tolerance | holds |", "|---|---|---|---|---|---|"]
table += [f"| {lr:g} | {what} | {a:.3f} ± {ea:.3f} | {b:.3f} ± {eb:.3f} | {tol:.3f} | {'yes' if ok else 'no'} |"
          for lr, what, a, ea, b, eb, tol, ok in verdicts]
OUT.write_text(
    f"# Training curves against SAELens {sae_lens.__version__}: TopK SAE, same stream\n\n"
    f"Written by `.venv-bench/bin/python benchmarks/saelens_curves.py {STEPS}` (CPU, 2 threads). World: the "
    f"Linear Representation Bench chapter's default (n_p = 32, n = 42, S = 0.95, M = 0.1); n_q = {N_Q}, k = {K}, "
    f"batch {BATCH}, SAELens's TopK defaults (AuxK, decoder-norm rescaling, lr constant); seeds {SEEDS}; M_GT at "
    f"tau 0.95 over encoder rows (the paper's metric) and decoder columns, mean ± standard error over seeds.\n\n"
    "Peak (per seed, the largest encoder-row M_GT over the checkpoints) and final value. Tolerance: the two means "
    "agree when they differ by at most twice the standard error of their difference plus one feature's share "
    f"(1 / n = {1 / gt.n:.3f}).\n\n" + "\n".join(table) + "\n\nThe curves:\n" + "\n".join(lines) + "\n")
print(OUT.read_text())
