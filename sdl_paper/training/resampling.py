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

from ..data.arrays import as_source
from ..model.config import Config
from ..model.dictionary import decode, encode, with_decoder
from .state import State, dead_mask


def firing_threshold(z: Tensor, own: Tensor, cfg: Config, params: dict[str, Tensor] | None = None) -> Tensor:
    """The pre-activation each latent must exceed to fire on its input, (m,), for z (m, n_q) of m inputs and
    ``own`` (m,) long, the latent of interest for each (the method's rule,
    :meth:`sdl_paper.model.methods.Method.firing_threshold`; ``params``: one model's, for JumpReLU's thresholds).

    TopK (and, per sample, the BatchTopK family): the k-th largest pre-activation of the OTHER latents, or 0 when
    that is negative (TopK keeps only positive entries); ReLU: 0; JumpReLU: the latent's threshold theta.
    """
    return cfg.impl.firing_threshold(z, own, params, cfg)


def _choose(state: State, source, cfg: Config, k: int, n: int, device):
    """Model k's pool of inputs (x_p, x_r), its per-input loss and n inputs drawn with probability proportional
    to the squared loss."""
    g = state.generators[k]
    x_p, x_r = source.pool(cfg.resample_pool, g, device)
    single = {name: p[k:k + 1] for name, p in state.params.items()}
    _, a = encode(single, x_p[None], cfg)
    loss = (x_r - decode(with_decoder(single), a, cfg)[0]).pow(2).sum(-1)
    weights = loss.pow(2).double().to(g.device)        # the generator's device (CUDA batches: a CUDA one)
    if weights.sum() == 0:
        weights = torch.ones_like(weights)
    chosen = torch.multinomial(weights, n, replacement=n > len(weights), generator=g).to(device)
    return x_p, x_r, loss, chosen


def _write(state: State, k: int, idx: Tensor, x_p: Tensor, x_r: Tensor, scale: Tensor, device) -> None:
    """Latents idx of model k: decoder columns the unit targets, encoder rows the unit inputs times ``scale``,
    encoder biases 0, their Adam moments reset (explicit index tensors: never a write into a copy)."""
    P = state.params
    kk, zero = torch.full_like(idx, k), torch.zeros((), device=device)
    unit_in = x_p / x_p.norm(dim=1, keepdim=True).clamp_min(1e-12)
    if "W_D" in P:
        cols = (kk[:, None], torch.arange(P["W_D"].shape[1], device=device)[None], idx[:, None])
        P["W_D"].index_put_(cols, x_r / x_r.norm(dim=1, keepdim=True).clamp_min(1e-12))
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


@torch.no_grad()
def resample(state: State, source, cfg: Config, device="cpu") -> list[int]:
    """Resample every dead latent of every model in place; returns the number resampled per model.

    Appends to ``state.resampled`` one dict per model with dead latents: ``step``, ``model``, ``latents`` (their
    indices), ``loss`` (the pool's mean loss before), and, on each latent's own chosen input after the write,
    ``z_own`` (its pre-activation), ``z_needed`` (:func:`firing_threshold`) and ``fires_own`` (whether the model's
    activation keeps it).
    """
    source, dead, counts = as_source(source), dead_mask(state, cfg.dead_window), []
    for k in range(dead.shape[0]):
        idx = dead[k].nonzero().flatten().to(device)
        counts.append(len(idx))
        if len(idx) == 0:
            continue
        x_p, x_r, loss, chosen = _choose(state, source, cfg, k, len(idx), device)
        alive, W_E = ~dead[k].to(device), state.params["W_E"]
        mean_alive = W_E[k][alive].norm(dim=1).mean() if alive.any() else torch.tensor(1.0, device=device)
        _write(state, k, idx, x_p[chosen], x_r[chosen], cfg.resample_scale * mean_alive, device)
        state.last_fired[k, idx.cpu()] = state.step
        single = {name: p[k:k + 1] for name, p in state.params.items()}
        z, a = encode(single, x_p[chosen][None], cfg)
        rows = torch.arange(len(idx), device=device)
        state.resampled.append({
            "step": state.step, "model": k, "latents": idx.tolist(), "loss": float(loss.mean()),
            "z_own": z[0, rows, idx].tolist(), "z_needed": firing_threshold(z[0], idx, cfg, single).tolist(),
            "fires_own": (a[0, rows, idx] != 0).tolist()})
    return counts
