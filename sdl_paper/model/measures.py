"""Measures of K batched models against data and ground truth: the loss on a fixed evaluation set, the activation
pattern (Definition 3.1) and the ground-truth metrics that training tracks."""
from __future__ import annotations

import torch
from torch import Tensor

from ..data.arrays import GroundTruthSource, as_source
from ..theory.metrics import recovery
from ..theory.regions import pattern_counts
from .config import Config
from .dictionary import decode, encode, with_decoder


def fixed_views(gt, K: int, n: int, seed: int, device="cpu") -> tuple[Tensor, Tensor, Tensor]:
    """One seeded evaluation set shared by K models: x (n, n_features), x_p (K, n, n_p), x_r (K, n, n_r)."""
    x = gt.coefficients.sample(n, torch.Generator().manual_seed(seed), dtype=gt.W_p.dtype)
    return x, (x @ gt.W_p.T).to(device).expand(K, -1, -1), (x @ gt.W_r.T).to(device).expand(K, -1, -1)


@torch.no_grad()
def evaluate(params: dict[str, Tensor], data, cfg: Config, n_samples: int = 4096, seed: int = 12345) -> Tensor:
    """Per-model reconstruction loss (K,) of the full dictionary on one fixed, seeded evaluation set of ``data``
    (any source; a GroundTruth draws fresh codes, stored activations a seeded sample of rows)."""
    source, K, device = as_source(data), params["W_E"].shape[0], params["W_E"].device
    if isinstance(source, GroundTruthSource):
        _, x_p, x_r = fixed_views(source.gt, K, n_samples, seed, device)
    else:
        x_p, x_r = (v.expand(K, -1, -1) for v in source.pool(n_samples, torch.Generator().manual_seed(seed), device))
    _, a = encode(params, x_p, cfg)
    return (x_r - decode(with_decoder(params), a, cfg)).pow(2).sum(-1).mean(1).cpu()


@torch.no_grad()
def feature_pattern(params: dict[str, Tensor], gt, cfg: Config) -> Tensor:
    """The activation pattern (K, n_q, n), bool: [k, i, d] when feature d alone (x_p = w_p^d) fires latent i of model
    k (Definition 3.1; for BatchTopK the n single-feature inputs form one batch)."""
    K = params["W_E"].shape[0]
    x_p = gt.W_p.T.to(params["W_E"]).expand(K, -1, -1)                # (K, n, n_p)
    _, a = encode(params, x_p, cfg)
    return (a != 0).transpose(1, 2)


@torch.no_grad()
def track(params: dict[str, Tensor], gt, cfg: Config) -> list[dict]:
    """Per model: M_GT(tau) and M_IP over encoder rows (the paper's) and over decoder columns, and the numbers of
    dead, monosemantic and polysemantic latents in the activation pattern."""
    P = with_decoder(params)
    F = feature_pattern(params, gt, cfg).cpu()
    return [recovery(P["W_E"][k].cpu(), P["W_D"][k].cpu(), gt.W_p, gt.W_r, cfg.tau) | pattern_counts(F[k])
            for k in range(F.shape[0])]
