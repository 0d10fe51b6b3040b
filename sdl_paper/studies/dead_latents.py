"""The analyses behind the dead-neurons chapter: training each distinct setting of the sweeps once, the per-run
tables of window-dead and pattern-dead latents, the TopK floor n_q - k n and the excess beyond it, the block-gradient
check at pattern-dead latents during training, and the coverage of features by polysemantic latents.

A run is ``(state, rec)`` from :func:`~sdl_paper.studies.experiments.run_cases`: K seeds trained as one batched
model with n_q latents on a ground truth with n features; ``rec.firing()`` is (steps, K, n_q).
"""
from __future__ import annotations

import pandas as pd
import torch

from . import experiments as ex
from ..model import Config, evaluate, feature_pattern
from ..theory import regions
from ..training import objective, train


def train_distinct(cases: dict, signature: dict, seeds: list[int], **kwargs) -> dict:
    """Train each distinct setting once and share its run among the cases with the same signature.

    Args:
        cases: ``{key: (gt, cfg, n_q)}``; signature: ``{key: hashable}``, equal for cases that are the same setting
            (the base setting appears in several one-factor sweeps).
        kwargs: passed to :func:`~sdl_paper.studies.experiments.run_cases` (``record_every``, ``device``).

    Returns ``{key: (state, rec)}`` for every key of ``cases``; the first key of each signature is the one trained.
    """
    first = {}  # one training per distinct setting
    for key in cases:
        first.setdefault(signature[key], key)
    trained = ex.run_cases({key: cases[key] for key in first.values()}, seeds, **kwargs)
    return {key: trained[first[signature[key]]] for key in cases}


def sweep_frame(runs: dict, cases: dict, seeds: list[int], k: int, n: int, windows: list[int]) -> pd.DataFrame:
    """One row per (case, seed) of the one-factor sweeps: window-dead fraction (window ``cfg.dead_window``),
    pattern-dead fraction (F_i empty), the TopK floor max(n_q - k n, 0) / n_q, polysemantic count, M_GT of the
    decoder and the reconstruction loss at the end of training, and the window-dead fraction for each of ``windows``.

    Args:
        runs: ``{(factor, value): (state, rec)}``; cases: ``{(factor, value): (gt, cfg, n_q)}``; seeds: the K seeds.
    """
    rows = []
    for (factor, value), (state, rec) in runs.items():
        gt, cfg, n_q = cases[(factor, value)]
        firing = rec.firing()
        final = state.tracked[-1]["models"]
        loss = evaluate(state.params, gt, cfg)
        by_w = ex.dead_by_window(firing, windows)
        window_dead = ex.dead_by_window(firing, [cfg.dead_window])[0]            # (K,)
        for i in range(len(seeds)):
            rows.append(
                {
                    "factor": factor,
                    "value": value,
                    "seed": seeds[i],
                    "n_q": n_q,
                    "window-dead": float(window_dead[i]),
                    "pattern-dead": final[i]["pattern_dead"] / n_q,
                    "floor": max(n_q - k * n, 0) / n_q,
                    "polysemantic": final[i]["polysemantic"],
                    "M_GT dec": final[i]["M_GT_dec"],
                    "loss": float(loss[i]),
                    **{f"dead (w={w})": float(by_w[j, i]) for j, w in enumerate(windows)},
                }
            )
    return pd.DataFrame(rows)


def floor_frame(runs: dict, cases: dict, seeds: list[int], k: int, n: int) -> pd.DataFrame:
    """One row per (method, n_q / n, seed): the floor fl = max(n_q - k n, 0) for TopK (0 for ReLU) as a fraction of
    n_q, the pattern-dead fraction, the excess share (pattern-dead - fl) / (n_q - fl), the window-dead fraction (last
    ``cfg.dead_window`` steps) and the fraction that is pattern-dead yet fired in that window.

    Args:
        runs: ``{(method, ratio): (state, rec)}`` with method "TopK" or "ReLU"; cases: ``{key: (gt, cfg, n_q)}``.
    """
    rows = []
    for (method, ratio), (state, rec) in runs.items():
        gt, cfg, n_q = cases[(method, ratio)]
        dead_p = ~feature_pattern(state.params, gt, cfg).any(-1)  # (K, n_q) pattern-dead
        dead_w = ~rec.firing()[-cfg.dead_window:].any(0)  # (K, n_q) window-dead
        fl = max(n_q - k * n, 0) if method == "TopK" else 0
        for i in range(len(seeds)):
            rows.append({"method": method, "n_q / n": ratio, "seed": seeds[i], "floor": fl / n_q,
                         "pattern-dead": float(dead_p[i].sum()) / n_q,
                         "excess share": float(dead_p[i].sum() - fl) / (n_q - fl),
                         "window-dead": float(dead_w[i].float().mean()),
                         "pattern-dead, fires": float((dead_p[i] & ~dead_w[i]).sum()) / n_q})
    return pd.DataFrame(rows)


def floor_summary(floors: pd.DataFrame) -> dict:
    """The floor's share of the TopK pattern-dead latents at widths with a floor (``share_floor``), the range of the
    TopK and ReLU mean excess shares over widths (``excess_lo``, ``excess_hi``, ``relu_dead_lo``, ``relu_dead_hi``),
    the share of pattern-dead latents that still fire (``mixed_share``), all floats, and ``excess_real`` (bool):
    the TopK excess is above zero by more than two standard errors at every width. ``floors`` is
    :func:`floor_frame`'s table."""
    topk_f = floors[floors.method == "TopK"]
    wide = topk_f[topk_f.floor > 0]
    share_floor = wide["floor"].sum() / wide["pattern-dead"].sum() if len(wide) else float("nan")
    ex_by = topk_f.groupby("n_q / n")["excess share"].agg(["mean", "sem"])
    relu_by = floors[floors.method == "ReLU"].groupby("n_q / n")["excess share"].agg(["mean", "sem"])
    mixed = wide["pattern-dead, fires"].sum() / wide["pattern-dead"].sum() if len(wide) else float("nan")
    return {"share_floor": float(share_floor),
            "excess_lo": float(ex_by["mean"].min()), "excess_hi": float(ex_by["mean"].max()),
            "relu_dead_lo": float(relu_by["mean"].min()), "relu_dead_hi": float(relu_by["mean"].max()),
            "mixed_share": float(mixed),
            "excess_real": bool((ex_by["mean"] - 2 * ex_by["sem"] > 0).all())}


def gradient_checks(gt, base: dict, n_q: int, seeds: list[int], device="cpu") -> pd.DataFrame:
    """Train ``Config.theory(**base)`` and, every tenth of training, check the zero-gradient claim at each
    seed's weights.

    At each check: the block gradients dL~/dW_E (n_q, n_p) and dL~/dW_D (n_p, n_q) with the current pattern F
    (n_q, n) held fixed, read at the pattern-dead latents (F_i empty) and, as a control, the smallest encoder-row
    gradient of a live latent; and the gradient of one seeded batch loss (dense objective) at the latents that did
    not fire in that batch. Returns one row per (check, seed).
    """
    cfg0 = Config.theory(**base)
    every = max(cfg0.steps // 10, 1)
    checks = []

    def check_gradients(state, terms):
        if (state.step - 1) % every:
            return
        F = feature_pattern(state.params, gt, cfg0)  # (K, n_q, n)
        for i in range(F.shape[0]):
            gE, gD = regions.block_gradients(state.params["W_E"][i], state.params["W_D"][i], gt, F=F[i])
            dead = ~F[i].any(1)
            P = {name: p[i : i + 1].detach().clone().requires_grad_(True) for name, p in state.params.items()}
            _, x_p, x_r = gt.sample(cfg0.batch_size, torch.Generator().manual_seed(999 + state.step))
            out = objective(P, x_p[None], x_r[None], Config.theory(**(base | {"sparse": False})))
            out["total"].sum().backward()
            silent = ~out["fired"][0]
            checks.append({
                "step": state.step - 1,
                "seed": seeds[i],
                "pattern-dead": int(dead.sum()),
                "max |dL~/dW_E| on them": float(gE[dead].abs().max()) if dead.any() else 0.0,
                "max |dL~/dW_D| on them": float(gD[:, dead].abs().max()) if dead.any() else 0.0,
                "min |dL~/dW_E| on live": float(gE[~dead].abs().sum(1).min()),
                "silent in batch": int(silent.sum()),
                "max |batch grad| on silent": (
                    float(max(P["W_E"].grad[0][silent].abs().max(), P["W_D"].grad[0][:, silent].abs().max()))
                    if silent.any() else 0.0),
            })

    train(gt, cfg0, n_q, seeds, progress=False, callback=check_gradients, device=device)
    return pd.DataFrame(checks)


def coverage_frame(runs: dict, cases: dict, seeds: list[int], k: int, n: int) -> pd.DataFrame:
    """One row per (case, seed) at the end of training: pattern-dead latents beyond the TopK floor max(n_q - k n, 0),
    window-dead latents (window ``cfg.dead_window``), polysemantic latents (|F_i| >= 2) and features without a
    monosemantic latent (no i with F_i = {d}). ``runs`` and ``cases`` as in :func:`sweep_frame`."""
    cover = []
    for (factor, value), (state, rec) in runs.items():
        gt, cfg, n_q = cases[(factor, value)]
        F = feature_pattern(state.params, gt, cfg)
        for i in range(F.shape[0]):
            size = F[i].sum(1)
            mono_features = F[i][size == 1].any(0)
            cover.append(
                {
                    "factor": factor,
                    "value": value,
                    "seed": seeds[i],
                    "n_q": n_q,
                    "dead beyond floor": int((size == 0).sum()) - max(n_q - k * n, 0),
                    "window-dead": int(ex.dead_by_window(rec.firing(), [cfg.dead_window])[0, i] * n_q),
                    "polysemantic": int((size >= 2).sum()),
                    "features without a monosemantic latent": int((~mono_features).sum()),
                }
            )
    return pd.DataFrame(cover)


def revival_frame(runs: dict, cases: dict, seeds: list[int]) -> pd.DataFrame:
    """Do dead latents stay dead? One row per (case, seed), pooled over the pattern checkpoints t of the run's
    Recorder (every ``record_every`` steps; the last, at the end of training, excluded):

    * window: latents that did not fire in the ``cfg.dead_window`` steps up to t (checkpoints with t + 1 >= that
      window), ``window_dead`` of them, ``window_fire_later`` of those fired at some step after t;
    * pattern: latents with F_i empty at t, ``pattern_dead``; ``pattern_fire_later`` fired after t;
      ``pattern_back`` have a non-empty pattern at the end of training.

    Rates are the counts over ``window_dead`` / ``pattern_dead`` (NaN when nothing was dead).
    """
    rows = []
    for key, (state, rec) in runs.items():
        cfg, firing = cases[key][1], rec.firing()                              # (steps, K, n_q)
        sizes, w = rec.pattern_sizes, cfg.dead_window
        later_any = firing.flip(0).cummax(0).values.flip(0)                   # [t]: fires at some step >= t
        counts = torch.zeros(5, firing.shape[1])
        for t, size in zip(rec.pattern_steps[:-1], sizes[:-1]):
            after = later_any[t + 1] if t + 1 < len(firing) else torch.zeros_like(firing[0])
            p_dead = size == 0
            counts[2] += p_dead.sum(-1)
            counts[3] += (p_dead & after).sum(-1)
            counts[4] += (p_dead & (sizes[-1] > 0)).sum(-1)
            if t + 1 >= w:
                w_dead = ~firing[t + 1 - w:t + 1].any(0)
                counts[0] += w_dead.sum(-1)
                counts[1] += (w_dead & after).sum(-1)
        for i, s in enumerate(seeds):
            c = counts[:, i].tolist()
            rows.append({**dict(zip(("factor", "value"), key)), "seed": s, "window_dead": c[0],
                         "window_fire_later": c[1], "pattern_dead": c[2], "pattern_fire_later": c[3],
                         "pattern_back": c[4],
                         "window_revived": c[1] / c[0] if c[0] else float("nan"),
                         "pattern_fires_again": c[3] / c[2] if c[2] else float("nan"),
                         "pattern_revived": c[4] / c[2] if c[2] else float("nan")})
    return pd.DataFrame(rows)
