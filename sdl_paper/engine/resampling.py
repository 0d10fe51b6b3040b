"""Neuron resampling (Bricken et al. 2023, "Towards Monosemanticity"), faithful to its description.

At a resampling step: the dead latents are those that have not fired for ``cfg.dead_window`` steps; the current
model's loss is computed on ``cfg.resample_pool`` fresh inputs; inputs are drawn with probability proportional to
the SQUARED loss; each dead latent's decoder column becomes its input's target x_r normalised to unit norm, its
encoder row the input x_p normalised and scaled to ``cfg.resample_scale`` (0.2 in the recipe) x the mean norm of the
alive encoder rows, its encoder bias 0; and the Adam moments of exactly those rows, columns and biases are reset.
Writes go through explicit index tensors, never chained boolean indexing (which silently writes into a copy).

Every event is logged in ``state.resampled`` (see :func:`resample`), so that a chapter can check whether a
resampled latent could fire at all: under TopK it must beat the k-th largest pre-activation of the other latents.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..sources.arrays import as_source
from .dictionary import Config, State, dead_mask, decode, encode, thresholds, with_decoder


def firing_threshold(z: Tensor, own: Tensor, cfg: Config, params: dict[str, Tensor] | None = None) -> Tensor:
    """The pre-activation each latent must exceed to fire on its input, (m,).

    Args:
        z: (m, n_q) pre-activations of m inputs; own: (m,) long, the latent of interest for each input.
        params: one model's parameters (leading axis 1); needed for JumpReLU's thresholds.

    TopK (and, per sample, the BatchTopK family): the k-th largest pre-activation of the OTHER latents, or 0 when
    that is negative (TopK keeps only positive entries); ReLU: 0; JumpReLU: the latent's threshold theta.
    """
    rows = torch.arange(len(own), device=z.device)
    if cfg.method in ("relu", "relu_dec"):
        return torch.zeros(len(own), dtype=z.dtype, device=z.device)
    if cfg.method == "jumprelu":
        return thresholds(params)[0, own]
    others = z.clone()
    others[rows, own] = float("-inf")
    return others.topk(min(cfg.k, z.shape[1] - 1), dim=1).values[:, -1].clamp_min(0)


@torch.no_grad()
def resample(state: State, source, cfg: Config, device="cpu") -> list[int]:
    """Resample every dead latent of every model in place; returns the number resampled per model.

    Appends to ``state.resampled`` one dict per model with dead latents: ``step``, ``model``, ``latents`` (their
    indices), ``loss`` (the pool's mean loss before), and, on each latent's own chosen input after the write,
    ``z_own`` (its pre-activation), ``z_needed`` (:func:`firing_threshold`) and ``fires_own`` (whether the model's
    activation keeps it).
    """
    source = as_source(source)
    dead = dead_mask(state, cfg.dead_window)
    counts = []
    P = state.params
    for k in range(dead.shape[0]):
        idx = dead[k].nonzero().flatten().to(device)
        counts.append(len(idx))
        if len(idx) == 0:
            continue
        g = state.generators[k]
        x_p, x_r = source.pool(cfg.resample_pool, g, device)
        single = {name: p[k:k + 1] for name, p in P.items()}
        _, a = encode(single, x_p[None], cfg)
        loss = (x_r - decode(with_decoder(single), a, cfg)[0]).pow(2).sum(-1)
        weights = loss.pow(2).double().to(g.device)        # the generator's device (CUDA batches: a CUDA one)
        if weights.sum() == 0:
            weights = torch.ones_like(weights)
        chosen = torch.multinomial(weights, len(idx), replacement=len(idx) > len(weights), generator=g).to(device)
        alive = ~dead[k].to(device)
        mean_alive = P["W_E"][k][alive].norm(dim=1).mean() if alive.any() else torch.tensor(1.0, device=device)
        scale = cfg.resample_scale * mean_alive
        kk = torch.full_like(idx, k)
        zero = torch.zeros((), device=device)
        unit_in = x_p[chosen] / x_p[chosen].norm(dim=1, keepdim=True).clamp_min(1e-12)
        if "W_D" in P:
            cols = (kk[:, None], torch.arange(P["W_D"].shape[1], device=device)[None], idx[:, None])
            P["W_D"].index_put_(cols, x_r[chosen] / x_r[chosen].norm(dim=1, keepdim=True).clamp_min(1e-12))
            P["W_E"].index_put_((kk, idx), scale * unit_in)
        else:                         # tied SAE: the shared row is decoder column and encoder row: the unit input
            P["W_E"].index_put_((kk, idx), unit_in)
        for moments in (state.adam_m, state.adam_v):
            moments["W_E"].index_put_((kk, idx), zero)
            if "W_D" in P:
                moments["W_D"].index_put_(cols, zero)
            if "b_E" in P:
                moments["b_E"].index_put_((kk, idx), zero)
        if "b_E" in P:
            P["b_E"].index_put_((kk, idx), zero)
        state.last_fired[k, idx.cpu()] = state.step
        single = {name: p[k:k + 1] for name, p in P.items()}
        z, a = encode(single, x_p[chosen][None], cfg)
        rows = torch.arange(len(idx), device=device)
        state.resampled.append({
            "step": state.step, "model": k, "latents": idx.tolist(), "loss": float(loss.mean()),
            "z_own": z[0, rows, idx].tolist(), "z_needed": firing_threshold(z[0], idx, cfg, single).tolist(),
            "fires_own": (a[0, rows, idx] != 0).tolist()})
    return counts


def revivals(state: State, firing: Tensor, gt, window: int, tau: float = 0.95):
    """One row per resampled latent and event (pandas DataFrame): did it come alive and stay alive, and what did
    it learn.

    Args:
        state: a finished run (its ``resampled`` log and final parameters, on the CPU).
        firing: (steps, K, n_q) bool, every step's firing from step 0 (``Recorder.firing()``).
        window: steps after the event in which a firing counts as "came alive"; the last ``window`` steps of the
            run decide "alive at the end".
        tau: cosine threshold for "recovers a ground-truth feature" (as in M_GT(tau)).

    Columns: ``model``, ``step``, ``latent``, ``fires_own`` (on its own chosen input, right after the write),
    ``z_ratio`` (z_own / z_needed: above 1 the latent fires on that input), ``came_alive`` (fired within
    ``window`` steps), ``last`` (the latent's last resampling), and for the last event only (NaN otherwise):
    ``alive_end``, ``best_cos`` (its final decoder column against the columns w_r^d of W_r), ``recovers``
    (alive at the end with best_cos > tau) and ``only_one`` (it recovers a feature that no other latent alive at
    the end recovers).
    """
    import pandas as pd

    W_D = with_decoder(state.params)["W_D"]                               # (K, n_r, n_q)
    D = W_D / W_D.norm(dim=1, keepdim=True).clamp_min(1e-12)
    T_ = gt.W_r / gt.W_r.norm(dim=0, keepdim=True)
    cos = (D.transpose(1, 2) @ T_.to(D)).abs()                            # (K, n_q, n)
    alive_end = firing[-window:].any(0)                                   # (K, n_q)
    good = (cos > tau) & alive_end[..., None]                             # alive latents that recover a feature
    last_event = {}
    for e_i, e in enumerate(state.resampled):
        for j in e["latents"]:
            last_event[(e["model"], j)] = e_i
    rows = []
    for e_i, e in enumerate(state.resampled):
        k, s = e["model"], e["step"]
        for j, fires, z, need in zip(e["latents"], e["fires_own"], e["z_own"], e["z_needed"]):
            row = {"model": k, "step": s, "latent": j, "fires_own": fires,
                   "z_ratio": z / need if need > 0 else float("inf"),
                   "came_alive": bool(firing[s:s + window, k, j].any()), "last": last_event[(k, j)] == e_i}
            if row["last"]:
                best, d = cos[k, j].max(0)
                others = good[k, torch.arange(good.shape[1]) != j, d].any()
                rec = bool(alive_end[k, j]) and float(best) > tau
                row |= {"alive_end": bool(alive_end[k, j]), "best_cos": float(best), "recovers": rec,
                        "only_one": rec and not bool(others)}
            rows.append(row)
    cols = ["model", "step", "latent", "fires_own", "z_ratio", "came_alive", "last", "alive_end", "best_cos",
            "recovers", "only_one"]
    return pd.DataFrame(rows, columns=cols).astype({"model": int, "step": int, "latent": int, "z_ratio": float,
                                                    "best_cos": float})


def relative_change(final, base: str = "none"):
    """Final losses against a baseline, seed by seed (pandas in, pandas out).

    Args:
        final: DataFrame, index = seeds, one column per remedy, values = final loss of that seed's run.
        base: the column every other column is compared with (same seed).

    Returns one row per other column: ``final loss`` (mean), ``change`` (mean over seeds of final / base - 1),
    ``sem`` (its standard error over seeds) and ``lower`` (seeds where the remedy's loss is below the base's).
    """
    import pandas as pd

    rows = {}
    for name in final.columns.drop(base):
        rel = final[name] / final[base] - 1
        rows[name] = {"final loss": final[name].mean(), "change": rel.mean(), "sem": rel.sem(),
                      "lower": int((final[name] < final[base]).sum()), "seeds": len(final)}
    return pd.DataFrame(rows).T


def spike_ratio(hist, step: int, width: int):
    """Per run and seed: mean logged loss in [step, step + width) over the mean in [step - width, step).

    Args:
        hist: long table with columns ``step``, ``loss``, ``seed`` and label columns (e.g. ``remedy``), as from
            :func:`sdl_paper.engine.experiments.history_frame`.
    Returns a Series indexed by the label columns and ``seed``.
    """
    labels = [c for c in hist.columns if c not in ("step", "loss", "L0", "window_dead", "seed")] + ["seed"]
    pre = hist[(hist.step >= step - width) & (hist.step < step)].groupby(labels)["loss"].mean()
    post = hist[(hist.step >= step) & (hist.step < step + width)].groupby(labels)["loss"].mean()
    return (post / pre).rename("spike ratio")
