"""The training engine's kernels: JumpReLU's straight-through estimator and the TopK and BatchTopK masks of the
dense path (the sparse TopK path is :mod:`sdl_paper.engine.sparse`)."""
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


def topk_mask(z: Tensor, k: int) -> Tensor:
    """Boolean mask of the k largest positive entries of each row of z (..., n_q)."""
    idx = z.topk(k, dim=-1).indices
    return torch.zeros_like(z, dtype=torch.bool).scatter(-1, idx, True) & (z > 0)


def batchtopk_mask(z: Tensor, k: int) -> Tensor:
    """Boolean mask of the k * B largest positive entries of each model's batch z (K, B, n_q)."""
    K, B, n_q = z.shape
    flat = z.reshape(K, B * n_q)
    idx = flat.topk(k * B, dim=-1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter(-1, idx, True).reshape(K, B, n_q) & (z > 0)
