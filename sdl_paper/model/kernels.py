"""JumpReLU's straight-through estimators (TopK's and BatchTopK's selections are
:func:`sdl_paper.theory.activations.topk_mask` and ``batchtopk_mask``; the sparse TopK path is
:mod:`sdl_paper.model.sparse`)."""
from __future__ import annotations

import torch
from torch import Tensor


def _kernel(z: Tensor, theta: Tensor, eps: float) -> Tensor:
    """Rectangle kernel K((z - theta) / eps) / eps of the straight-through estimator."""
    return ((z - theta).abs() < eps / 2).to(z.dtype) / eps


class JumpReLUSTE(torch.autograd.Function):
    """z * H(z - theta); d/dtheta by the pseudo-derivative -theta K((z - theta)/eps)/eps. theta is (K, 1, n_q)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * (z > theta)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        g_theta = -(grad * theta * _kernel(z, theta, ctx.eps)).sum(dim=1, keepdim=True)
        return grad * (z > theta), g_theta, None


class StepSTE(torch.autograd.Function):
    """H(z - theta) for the L0 penalty; d/dtheta by -K((z - theta)/eps)/eps, no gradient to z."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        return None, -(grad * _kernel(z, theta, ctx.eps)).sum(dim=1, keepdim=True), None
