"""Neuron resampling (Bricken et al. 2023, "Towards Monosemanticity"), faithful to its description.

At a resampling step: the dead latents are those that have not fired for ``cfg.dead_window`` steps; the current
model's loss is computed on ``cfg.resample_pool`` fresh inputs; inputs are drawn with probability proportional to
the SQUARED loss; each dead latent's decoder column becomes its input's target x_r normalised to unit norm, its
encoder row the input x_p normalised and scaled to 0.2 x the mean norm of the alive encoder rows, its encoder bias 0;
and the Adam moments of exactly those rows, columns and biases are reset. Writes go through explicit index
tensors, never chained boolean indexing (which silently writes into a copy).
"""
from __future__ import annotations

import torch

from .trainer import Config, State, dead_mask, decode, encode, with_decoder


@torch.no_grad()
def resample(state: State, gt, cfg: Config, device="cpu") -> list[int]:
    """Resample every dead latent of every model in place; returns the number resampled per model."""
    dead = dead_mask(state, cfg.dead_window)
    counts = []
    P = state.params
    for k in range(dead.shape[0]):
        idx = dead[k].nonzero().flatten().to(device)
        counts.append(len(idx))
        if len(idx) == 0:
            continue
        g = state.generators[k]
        x = gt.coefficients.sample(cfg.resample_pool, g, dtype=gt.W_p.dtype)
        x_p, x_r = (x @ gt.W_p.T).to(device), (x @ gt.W_r.T).to(device)
        single = {name: p[k:k + 1] for name, p in P.items()}
        _, a = encode(single, x_p[None], cfg)
        loss = (x_r - decode(with_decoder(single), a)[0]).pow(2).sum(-1)
        weights = loss.pow(2).cpu().double()
        if weights.sum() == 0:
            weights = torch.ones_like(weights)
        chosen = torch.multinomial(weights, len(idx), replacement=len(idx) > len(weights), generator=g).to(device)
        alive = ~dead[k].to(device)
        scale = 0.2 * (P["W_E"][k][alive].norm(dim=1).mean() if alive.any() else torch.tensor(1.0, device=device))
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
    return counts
