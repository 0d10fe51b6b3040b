"""The training objective of K batched models: reconstruction, the method's penalty, AuxK and anchoring.

Per model (K,): ``rec`` (the method's reconstruction error), ``penalty`` (its sparsity penalty plus anchoring),
``aux`` (AuxK, Gao et al. 2024) and their sum ``total``; also ``fired`` (K, n_q), the latents that fired on the
batch, and ``L0`` (K,). What a method contributes comes from its registry object (:mod:`sdl_paper.model.methods`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..model.config import Config
from ..model.dictionary import decode, encode, with_decoder
from ..model.methods import per_model
from ..model.sparse import Workspace, sparse_topk
from ..theory.activations import topk_mask


def _aux_size(cfg: Config, n_p: int) -> int:
    """AuxK's number of dead latents per sample (0 in the config: n_p // 2)."""
    return cfg.aux_k or n_p // 2


def _sparse_terms(params, x_p, x_r, cfg: Config, dead, ws) -> dict[str, Tensor]:
    """rec, aux, fired and L0 of the sparse TopK path (:func:`~sdl_paper.model.sparse.sparse_topk`)."""
    K, n_q = x_p.shape[0], params["W_E"].shape[1]
    aux_w = None
    if dead is not None:
        aux_w = torch.full((K,), cfg.aux_coef, device=x_p.device)
        if cfg.practice == "standard":
            aux_w = aux_w * (dead.sum(1).to(torch.float32) / _aux_size(cfg, x_p.shape[-1])).clamp(max=1.0)
    out = sparse_topk(params, x_p, x_r, cfg.k, cfg.practice == "standard" and cfg.subtract_b_D, cfg.rescaled,
                      dead, min(_aux_size(cfg, x_p.shape[-1]), n_q), aux_w, ws)
    on = out["vals"] > 0                                                  # (K, B, k): the chosen that fired
    # latent n_q is a sink for the chosen that did not fire (all writes are True: deterministic)
    fired = torch.zeros(K, n_q + 1, dtype=torch.bool, device=x_p.device).scatter_(
        1, torch.where(on, out["idx"], n_q).reshape(K, -1), True)[:, :n_q]
    return {"rec": out["rec"], "aux": out["aux"], "fired": fired, "L0": on.sum(-1, dtype=torch.float32).mean(1)}


def _aux_loss(params, z, x_r, x_hat, cfg: Config, dead: Tensor) -> Tensor:
    """AuxK on the dense path: the k_aux largest dead latents reconstruct the residual (no decoder bias)."""
    k_aux = min(_aux_size(cfg, params["W_E"].shape[2]), params["W_E"].shape[1])
    mask = topk_mask(z.masked_fill(~dead[:, None], float("-inf")), k_aux) & dead[:, None]
    codes = z * mask
    if cfg.rescaled:                                  # SAELens: codes divided by the decoder norms
        codes = codes / params["W_D"].norm(dim=1)[:, None].clamp_min(1e-12)
    e_hat = torch.bmm(codes, params["W_D"].transpose(1, 2))          # no decoder bias (Gao et al. 2024)
    aux = cfg.aux_coef * ((x_r - x_hat).detach() - e_hat).pow(2).sum(-1).mean(1)
    if cfg.practice == "standard":
        aux = aux * (dead.sum(1).to(aux.dtype) / _aux_size(cfg, params["W_E"].shape[2])).clamp(max=1.0)
    return aux


def anchoring(params: dict[str, Tensor], cfg: Config, anchors: dict[str, Tensor], like: Tensor) -> Tensor:
    """Feature anchoring (K,): lambda (||W_E[:m] - A_p||^2 + ||W_D[:, :m] - A_r||^2) for m anchored latents."""
    m = anchors["A_p"].shape[0]
    return per_model(cfg.anchor_coef, like) * ((params["W_E"][:, :m] - anchors["A_p"]).pow(2).sum((1, 2))
                                               + (params["W_D"][..., :m] - anchors["A_r"]).pow(2).sum((1, 2)))


def objective(params: dict[str, Tensor], x_p: Tensor, x_r: Tensor, cfg: Config, dead: Tensor | None = None,
              anchors: dict[str, Tensor] | None = None, ws: Workspace | None = None) -> dict[str, Tensor]:
    """Per-model loss terms for batches x_p (K, B, n_p), x_r (K, B, n_r); see the module docstring.

    Args:
        dead: (K, n_q) bool, the latents AuxK may use (only with remedy ``auxk``).
        anchors: ``{"A_p": (m, n_p), "A_r": (n_r, m)}`` known directions pulling the first m encoder rows and decoder
            columns (feature anchoring, with coefficient ``cfg.anchor_coef``).
        ws: the training loop's :class:`~sdl_paper.model.sparse.Workspace` (sparse TopK path only): the sparse
            kernel adds its gradients into its buffers, which :meth:`~Workspace.attach` made the .grad.
    """
    K, method = x_p.shape[0], cfg.impl
    params = with_decoder(params)
    dead = dead if cfg.remedy == "auxk" and dead is not None and bool(dead.any()) else None
    if method.sparse_path(cfg, params["W_E"].shape[1]):
        terms = _sparse_terms(params, x_p, x_r, cfg, dead, ws)
        penalty = torch.zeros(K, dtype=terms["rec"].dtype, device=terms["rec"].device)
    else:
        z, a = encode(params, x_p, cfg)
        x_hat = decode(params, a, cfg)
        rec = method.reconstruction(x_r, x_hat, a, params, cfg, decode)
        terms = {"rec": rec, "fired": (a != 0).any(dim=1), "L0": (a != 0).float().sum(-1).mean(1)}
        penalty = method.penalty(z, a, params, cfg)
        penalty = torch.zeros(K, dtype=rec.dtype, device=rec.device) if penalty is None else penalty
        terms["aux"] = _aux_loss(params, z, x_r, x_hat, cfg, dead) if dead is not None else torch.zeros_like(penalty)
    if anchors is not None and cfg.anchors:
        penalty = penalty + anchoring(params, cfg, anchors, terms["rec"])
    rec, penalty, aux = terms["rec"].float(), penalty.float(), terms["aux"].float()
    return {"rec": rec, "penalty": penalty, "aux": aux, "total": rec + penalty + aux, "fired": terms["fired"],
            "L0": terms["L0"]}
