"""The optimiser step of K batched models: per-model gradient clipping and Adam (torch's fused kernel)."""
from __future__ import annotations

import torch
from torch import Tensor

from .state import State, row_major


@torch.no_grad()
def clip_per_model(params: dict[str, Tensor], max_norm: float) -> None:
    """Scale each model's gradient (all its parameters together) to norm at most ``max_norm``, as
    torch.nn.utils.clip_grad_norm_ does for one model (and K = 1 calls, for its fewer operations); models stay
    independent."""
    if next(iter(params.values())).shape[0] == 1:
        torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm, foreach=True)
        return
    norm = torch.stack([torch.linalg.vector_norm(p.grad, dim=tuple(range(1, p.grad.ndim))) ** 2   # no copy of
                        for p in params.values()]).sum(0).sqrt()                     # a column-major grad; (K,)
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for p in params.values():
        p.grad.mul_(scale.view(-1, *([1] * (p.grad.ndim - 1))))


def adam_step(state: State, lr, betas: tuple[float, float], eps: float = 1e-8) -> None:
    """One Adam update of every parameter from its .grad (bias correction by the global step); ``lr`` is a float
    or one value per model. torch's fused Adam kernel (one pass over each tensor, where the textbook sequence of
    element-wise operations takes eight; benchmarks/RESULTS.md); same update up to rounding. With one lr per model,
    one call at lr 1 whose step each model then scales by its lr (equal to a call per model up to rounding)."""
    b1, b2 = betas
    names = list(state.params)
    # Adam is element-wise: a column-major W_D, its gradient and moments go in as their contiguous transposes, which
    # the fused kernel would otherwise copy (a copy of W_D per step)
    quads = [row_major(state.params[n], state.params[n].grad, state.adam_m[n], state.adam_v[n]) for n in names]
    params, grads, m, v = (list(t) for t in zip(*quads))
    t = [torch.tensor(float(state.step + 1), device=params[0].device)] * len(params)   # one per tensor
    kw = dict(beta1=b1, beta2=b2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
    with torch.no_grad():
        if isinstance(lr, tuple):       # one call at lr 1, each model's step then scaled by its lr (one call per
            before = [p.clone() for p in params]           # model on its slices costs more than the whole step)
            torch._fused_adam_(params, grads, m, v, [], t, lr=1.0, **kw)
            scale = torch.tensor(lr, dtype=params[0].dtype, device=params[0].device)
            for p, p0 in zip(params, before):
                p.sub_(p0).mul_(scale.view(-1, *([1] * (p.ndim - 1)))).add_(p0)
        else:
            torch._fused_adam_(params, grads, m, v, [], t, lr=float(lr), **kw)
    for p in state.params.values():
        p.grad = None


@torch.no_grad()
def constrain(params: dict[str, Tensor], unit_decoder: bool) -> None:
    """After a step: JumpReLU's theta projected to >= 0 (SAELens), decoder columns renormalised to unit norm."""
    if "theta" in params:
        params["theta"].clamp_(min=0)
    if unit_decoder:
        W_D = params["W_D"] if "W_D" in params else params["W_E"].transpose(1, 2)   # tied: W_E's rows
        W_D /= W_D.norm(dim=1, keepdim=True).clamp_min(1e-12)
