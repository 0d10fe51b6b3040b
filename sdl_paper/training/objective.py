"""The training objective of K batched models: reconstruction, the method's penalty, AuxK and anchoring.

Per model (K,): ``rec`` (the method's reconstruction error: the batch mean of ||x_r - x_hat||^2, summed over the
n_r coordinates; the Matryoshka methods' sum or mean over their prefixes or k values), ``penalty`` (its sparsity
penalty plus anchoring), ``aux`` (AuxK, Gao et al. 2024) and their sum ``total``; also ``fired`` (K, n_q), the
latents that fired on the batch, and ``L0`` (K,). :func:`batch_norms` gives the batch's own size, which the
training loop adds on logging steps only. What a method contributes comes from its registry object
(:mod:`sdl_paper.model.methods`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..model.config import AUXK, Config
from ..model.dictionary import decode, encode, with_decoder
from ..model.methods import aux_size, dead_share, per_model
from ..model.sparse import Workspace
from ..theory.activations import topk_mask


def _aux_loss(params, z, x_p, x_r, x_hat, cfg: Config, dead: Tensor) -> Tensor:
    """AuxK on the dense path: the codes of the k_aux largest dead latents reconstruct, without a bias, the
    residual x_r - x_hat through W_D (remedy ``auxk``, Gao et al. 2024) or the input x_p through the separate
    decoder W_aux (remedy ``auxk_input``, the paper's eq. 8)."""
    k_aux = min(aux_size(cfg, params["W_E"].shape[2]), params["W_E"].shape[1])
    mask = topk_mask(z.masked_fill(~dead[:, None], float("-inf")), k_aux) & dead[:, None]
    codes = z * mask
    if cfg.rescaled:                                  # SAELens: codes divided by the decoder norms
        codes = codes / params["W_D"].norm(dim=1)[:, None].clamp_min(1e-12)
    if cfg.remedy == "auxk_input":
        target, e_hat = x_p, torch.bmm(codes, params["W_aux"].transpose(1, 2))
    else:
        target, e_hat = (x_r - x_hat).detach(), torch.bmm(codes, params["W_D"].transpose(1, 2))
    aux = cfg.aux_coef * (target - e_hat).pow(2).sum(-1).mean(1)
    if cfg.practice == "standard":
        aux = aux * dead_share(cfg, dead, params["W_E"].shape[2], aux.dtype)
    return aux


def anchoring(params: dict[str, Tensor], cfg: Config, anchors: dict[str, Tensor], like: Tensor) -> Tensor:
    """Feature anchoring (K,): lambda (||W_E[:m] - A_p||^2 + ||W_D[:, :m] - A_r||^2) for m anchored latents
    (A_p (m, n_p) and A_r (n_r, m) shared by all models, or (K, m, n_p) and (K, n_r, m) per model)."""
    m = anchors["A_p"].shape[-2]
    return per_model(cfg.anchor_coef, like) * ((params["W_E"][:, :m] - anchors["A_p"]).pow(2).sum((1, 2))
                                               + (params["W_D"][..., :m] - anchors["A_r"]).pow(2).sum((1, 2)))


def objective(params: dict[str, Tensor], x_p: Tensor, x_r: Tensor, cfg: Config, dead: Tensor | None = None,
              anchors: dict[str, Tensor] | None = None, ws: Workspace | None = None,
              coef_scale: float = 1.0) -> dict[str, Tensor]:
    """Per-model loss terms for batches x_p (K, B, n_p), x_r (K, B, n_r); see the module docstring.

    Args:
        dead: (K, n_q) bool, the latents AuxK may use (only with remedy ``auxk`` or ``auxk_input``).
        anchors: ``{"A_p": (m, n_p), "A_r": (n_r, m)}`` known directions pulling the first m encoder rows and decoder
            columns (feature anchoring, with coefficient ``cfg.anchor_coef``); per model with a leading K.
        ws: the training loop's :class:`~sdl_paper.model.sparse.Workspace` (sparse TopK path only): the sparse
            kernel adds its gradients into its buffers, which :meth:`~Workspace.attach` made the .grad.
        coef_scale: factor on the method's sparsity penalty (its warm-up, :mod:`sdl_paper.training.schedule`).
    """
    K, method = x_p.shape[0], cfg.impl
    params = with_decoder(params)
    dead = dead if cfg.remedy in AUXK and dead is not None and bool(dead.any()) else None
    if method.sparse_path(cfg, params["W_E"].shape[1]):
        terms = method.sparse_terms(params, x_p, x_r, cfg, dead, ws)
        penalty = torch.zeros(K, dtype=terms["rec"].dtype, device=terms["rec"].device)
    else:
        z, a = encode(params, x_p, cfg)
        x_hat = decode(params, a, cfg)
        rec = method.reconstruction(x_r, x_hat, a, params, cfg, decode)
        terms = {"rec": rec, "fired": (a != 0).any(dim=1), "L0": (a != 0).float().sum(-1).mean(1)}
        penalty = method.penalty(z, a, params, cfg)
        penalty = torch.zeros(K, dtype=rec.dtype, device=rec.device) if penalty is None else penalty * coef_scale
        terms["aux"] = _aux_loss(params, z, x_p, x_r, x_hat, cfg, dead) if dead is not None else torch.zeros_like(penalty)
    if anchors is not None and cfg.anchors:
        penalty = penalty + anchoring(params, cfg, anchors, terms["rec"])
    rec, penalty, aux = terms["rec"].float(), penalty.float(), terms["aux"].float()
    return {"rec": rec, "penalty": penalty, "aux": aux, "total": rec + penalty + aux, "fired": terms["fired"],
            "L0": terms["L0"]}


@torch.no_grad()
def batch_norms(x_r: Tensor) -> dict[str, Tensor]:
    """The batch's ``energy`` = mean ||x_r||^2 and ``var`` = mean ||x_r - mean x_r||^2, per model (K,), for x_r
    (K, B, n_r): the denominators of the normalised MSE rec / energy and the explained variance 1 - rec / var."""
    x = x_r.float()
    return {"energy": x.pow(2).sum(-1).mean(1), "var": (x - x.mean(1, keepdim=True)).pow(2).sum(-1).mean(1)}
